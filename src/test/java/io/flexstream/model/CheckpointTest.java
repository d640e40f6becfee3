package io.flexstream.model;

import io.flexstream.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CheckpointTest {

    static final OptConfig TINY = OptConfig.custom(16, 2, 2, 24, 40, 32, 16, true);

    @TempDir
    Path dir;

    private Path write(OptConfig config, TinyModel.Options options) {
        TinyModel.writeWeights(dir, config, 7, DType.F32, options);
        return dir;
    }

    @Test
    void prefixedNamesResolveWithAndWithoutPrefix() {
        try (Checkpoint c = Checkpoint.open(write(TINY, TinyModel.Options.defaults()))) {
            assertTrue(c.tensorNames().contains("model.decoder.embed_tokens.weight"));
            assertTrue(c.has("decoder.embed_tokens.weight"));
            assertTrue(c.has("model.decoder.embed_tokens.weight"));
            assertEquals("model.decoder.layers.1.fc2.bias", c.tensor("decoder.layers.1.fc2.bias").name());
            assertFalse(c.has(OptTensorLayout.LM_HEAD));
            assertEquals(TINY, c.config());
        }
    }

    @Test
    void bareNamesResolveWithAndWithoutPrefix() {
        try (Checkpoint c = Checkpoint.open(write(TINY, new TinyModel.Options(false, false, 1)))) {
            assertTrue(c.tensorNames().contains("decoder.embed_tokens.weight"));
            assertEquals("decoder.layers.0.fc1.weight", c.tensor("model.decoder.layers.0.fc1.weight").name());
            assertArrayEquals(new long[] {24, 16}, c.tensor("decoder.layers.0.fc1.weight").shape());
        }
    }

    @Test
    void shardedIndexSpreadsTensorsOverTwoFiles() throws IOException {
        write(TINY, new TinyModel.Options(false, true, 2));
        assertFalse(Files.exists(dir.resolve(Checkpoint.SINGLE_FILE)));
        assertTrue(Files.exists(dir.resolve("model-00001-of-00002.safetensors")));
        assertTrue(Files.exists(dir.resolve("model-00002-of-00002.safetensors")));
        assertTrue(Files.readString(dir.resolve(Checkpoint.INDEX)).contains("weight_map"));
        try (Checkpoint c = Checkpoint.open(dir); Arena arena = Arena.ofShared()) {
            assertEquals(2, c.files().size());
            assertEquals(OptTensorLayout.of(TINY, false).size(), c.tensorNames().size());
            assertNotSame(c.tensor("decoder.embed_tokens.weight").file(),
                    c.tensor("decoder.layers.1.final_layer_norm.bias").file());
            OptWeights w = OptWeights.load(c, arena);
            assertEquals(TINY.parameterCount(), w.parameterCount());
        }
    }

    @Test
    void shardMissingFromDiskIsNamed() throws IOException {
        write(TINY, new TinyModel.Options(false, true, 2));
        Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("shard model-00002-of-00002.safetensors listed in "
                + Checkpoint.INDEX + " is missing"), e.getMessage());
    }

    @Test
    void tiedAndUntiedLmHead() {
        try (Arena arena = Arena.ofShared()) {
            try (Checkpoint c = Checkpoint.open(write(TINY, TinyModel.Options.defaults()))) {
                OptWeights w = OptWeights.load(c, arena);
                assertTrue(w.tiedLmHead());
                assertSame(w.embedTokens(), w.lmHead());
            }
            Path untied = dir.resolve("untied");
            TinyModel.writeWeights(untied, TINY, 7, DType.F32, new TinyModel.Options(true, true, 1));
            try (Checkpoint c = Checkpoint.open(untied)) {
                assertTrue(c.tensorNames().contains("lm_head.weight"), "lm_head is stored without the model. prefix");
                OptWeights w = OptWeights.load(c, arena);
                assertFalse(w.tiedLmHead());
                assertEquals(w.embedTokens().byteSize(), w.lmHead().byteSize());
                assertNotEquals(-1L, w.embedTokens().mismatch(w.lmHead()), "an untied head has its own values");
                assertEquals(TINY.parameterCount() + 40L * 16, w.parameterCount());
            }
        }
    }

    @Test
    void missingTensorIsNamed() {
        write(TINY, TinyModel.Options.defaults());
        // Claim a third layer the weights do not have.
        new OptConfig(16, 3, 2, 24, 40, 32, 16, true, "relu", true, true, 2, 2, 1, "float32")
                .write(dir.resolve(Checkpoint.CONFIG));
        try (Checkpoint c = Checkpoint.open(dir); Arena arena = Arena.ofShared()) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> OptWeights.load(c, arena));
            assertTrue(e.getMessage().startsWith("checkpoint " + dir + ": missing tensor decoder.layers.2."),
                    e.getMessage());
        }
    }

    @Test
    void misshapedTensorIsNamedWithFileAndConfig() {
        write(TINY, TinyModel.Options.defaults());
        OptConfig.custom(16, 2, 2, 32, 40, 32, 16, true).write(dir.resolve(Checkpoint.CONFIG));
        try (Checkpoint c = Checkpoint.open(dir); Arena arena = Arena.ofShared()) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> OptWeights.load(c, arena));
            assertEquals("checkpoint " + dir + ": tensor model.decoder.layers.0.fc1.weight has shape [24, 16], "
                    + "expected [32, 16] for hidden_size=16, ffn_dim=32, vocab_size=40, word_embed_proj_dim=16, "
                    + "max_position_embeddings=32 (file " + dir.resolve(Checkpoint.SINGLE_FILE) + ")",
                    e.getMessage());
        }
    }

    @Test
    void truncatedWeightsFileIsNamed() throws IOException {
        write(TINY, TinyModel.Options.defaults());
        Path file = dir.resolve(Checkpoint.SINGLE_FILE);
        byte[] whole = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(whole, whole.length - 100));
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().startsWith("truncated file " + file + ": tensor "), e.getMessage());
    }

    @Test
    void unsupportedArchitectureMissingConfigAndBadJson() throws IOException {
        write(TINY, TinyModel.Options.defaults());
        Path config = dir.resolve(Checkpoint.CONFIG);
        String good = Files.readString(config);

        Files.writeString(config, good.replace("\"opt\"", "\"llama\""));
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertEquals("unsupported architecture llama in " + config + ": FlexStream supports model_type opt",
                e.getMessage());

        Files.writeString(config, good.substring(0, good.length() / 2));
        e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().startsWith("bad JSON in " + config), e.getMessage());

        Files.delete(config);
        e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().startsWith("missing " + config), e.getMessage());
    }

    @Test
    void missingWeightsSuggestSafetensors() throws IOException {
        TINY.write(dir.resolve(Checkpoint.CONFIG));
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("has no model.safetensors or model.safetensors.index.json"),
                e.getMessage());

        Files.write(dir.resolve("pytorch_model.bin"), new byte[] {1});
        e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("only pytorch_model.bin") && e.getMessage().contains("safetensors"),
                e.getMessage());
    }

    @Test
    void badIndexIsNamed() throws IOException {
        write(TINY, new TinyModel.Options(false, true, 2));
        Files.writeString(dir.resolve(Checkpoint.INDEX), "{\"metadata\": {}}");
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains(Checkpoint.INDEX) && e.getMessage().contains("weight_map"),
                e.getMessage());
    }

    @Test
    void postLayerNormCheckpointHasProjectionsAndNoFinalNorm() {
        OptConfig postLn = OptConfig.custom(16, 1, 2, 24, 40, 32, 8, false);
        try (Checkpoint c = Checkpoint.open(write(postLn, TinyModel.Options.defaults()));
             Arena arena = Arena.ofShared()) {
            assertArrayEquals(new long[] {16, 8}, c.tensor("decoder.project_in.weight").shape());
            assertArrayEquals(new long[] {8, 16}, c.tensor("decoder.project_out.weight").shape());
            assertArrayEquals(new long[] {40, 8}, c.tensor("decoder.embed_tokens.weight").shape());
            assertFalse(c.has("decoder.final_layer_norm.weight"));
            OptWeights w = OptWeights.load(c, arena);
            assertNull(w.finalLayerNormWeight());
            assertNull(w.finalLayerNormBias());
            assertEquals(16L * 8 * 4, w.projectIn().byteSize());
        }
    }

    @Test
    void indexEntryPointingAtTheWrongShardIsNamed() throws IOException {
        write(TINY, new TinyModel.Options(false, true, 2));
        Path index = dir.resolve(Checkpoint.INDEX);
        Files.writeString(index, Files.readString(index).replaceFirst(
                "\"model.decoder.embed_tokens.weight\" : \"model-00001-of-00002.safetensors\"",
                "\"model.decoder.embed_tokens.weight\" : \"model-00002-of-00002.safetensors\""));
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("maps model.decoder.embed_tokens.weight to model-00002-of-00002"),
                e.getMessage());
    }

    /** Loaded weights live in the caller's arena: closing the checkpoint (unmapping it) must not affect them. */
    @Test
    void loadedWeightsOutliveTheCheckpoint() {
        write(TINY, TinyModel.Options.defaults());
        try (Arena arena = Arena.ofShared()) {
            OptWeights w;
            try (Checkpoint c = Checkpoint.open(dir)) {
                w = OptWeights.load(c, arena);
            }
            try (Arena scratch = Arena.ofConfined()) {
                OptWeights expected = OptWeights.random(TINY, 7, scratch);
                assertEquals(-1L, expected.embedTokens().mismatch(w.embedTokens()));
                assertEquals(-1L, expected.layers().get(1).fc2Weight().mismatch(w.layers().get(1).fc2Weight()));
            }
        }
    }
}
