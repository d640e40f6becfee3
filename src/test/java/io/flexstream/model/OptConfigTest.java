package io.flexstream.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptConfigTest {

    @TempDir
    Path dir;

    private Path config(String json) throws IOException {
        Path file = dir.resolve("config.json");
        Files.writeString(file, json);
        return file;
    }

    @Test
    void missingOptionalKeysTakeOptDefaults() throws IOException {
        OptConfig c = OptConfig.read(config("""
                {"model_type": "opt", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "ffn_dim": 256}"""));
        assertEquals(50272, c.vocabSize());
        assertEquals(2048, c.maxPositionEmbeddings());
        assertEquals(64, c.wordEmbedProjDim(), "word_embed_proj_dim defaults to hidden_size");
        assertTrue(c.doLayerNormBefore());
        assertEquals("relu", c.activationFunction());
        assertTrue(c.enableBias());
        assertTrue(c.layerNormElementwiseAffine());
        assertEquals(2, c.bosTokenId());
        assertEquals(2, c.eosTokenId());
        assertEquals(1, c.padTokenId());
        assertEquals(16, c.headDim());
        assertFalse(c.hasProjection());
    }

    @Test
    void newerDtypeKeyIsAcceptedForTorchDtype() throws IOException {
        OptConfig c = OptConfig.read(config("""
                {"model_type": "opt", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "ffn_dim": 256, "dtype": "bfloat16"}"""));
        assertEquals("bfloat16", c.torchDtype());
        assertEquals("float32", OptConfig.read(config("""
                {"model_type": "opt", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "ffn_dim": 256}""")).torchDtype());
    }

    @Test
    void writeThenReadRoundTrips() {
        OptConfig c = OptConfig.custom(96, 3, 6, 200, 1000, 512, 48, false).withTorchDtype("bfloat16");
        Path file = dir.resolve("config.json");
        c.write(file);
        assertEquals(c, OptConfig.read(file));
    }

    @Test
    void writtenConfigUsesHuggingFaceKeys() throws IOException {
        Path file = dir.resolve("config.json");
        OptConfig.tiny(64, 2, 4, 1000).write(file);
        String json = Files.readString(file);
        assertTrue(json.contains("\"model_type\" : \"opt\""), json);
        assertTrue(json.contains("\"OPTForCausalLM\""), json);
        assertTrue(json.contains("\"num_hidden_layers\" : 2"), json);
        assertTrue(json.contains("\"word_embed_proj_dim\" : 64"), json);
    }

    @Test
    void otherArchitecturesAreRefusedNamingTheFile() throws IOException {
        Path file = config("""
                {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "ffn_dim": 256}""");
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptConfig.read(file));
        assertEquals("unsupported architecture llama in " + file + ": FlexStream supports model_type opt",
                e.getMessage());
    }

    @Test
    void hiddenSizeMustDivideIntoHeads() throws IOException {
        Path file = config("""
                {"model_type": "opt", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 5,
                 "ffn_dim": 256}""");
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptConfig.read(file));
        assertTrue(e.getMessage().contains("not divisible"), e.getMessage());
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    @Test
    void onlyReluIsSupported() throws IOException {
        Path file = config("""
                {"model_type": "opt", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "ffn_dim": 256, "activation_function": "gelu"}""");
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptConfig.read(file));
        assertTrue(e.getMessage().contains("unsupported activation_function gelu"), e.getMessage());
    }

    @Test
    void badJsonMissingFileAndWrongTypesNameTheFile() throws IOException {
        Path bad = config("{\"model_type\": \"opt\", \"hidden_size\": ");
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptConfig.read(bad));
        assertTrue(e.getMessage().startsWith("bad JSON in " + bad), e.getMessage());

        Path missing = dir.resolve("nope/config.json");
        e = assertThrows(CheckpointException.class, () -> OptConfig.read(missing));
        assertTrue(e.getMessage().startsWith("missing " + missing), e.getMessage());

        Path wrongType = config("""
                {"model_type": "opt", "hidden_size": "big", "num_hidden_layers": 2, "num_attention_heads": 4,
                 "ffn_dim": 256}""");
        e = assertThrows(CheckpointException.class, () -> OptConfig.read(wrongType));
        assertTrue(e.getMessage().contains("hidden_size") && e.getMessage().contains(wrongType.toString()),
                e.getMessage());

        Path noLayers = config("{\"model_type\": \"opt\", \"hidden_size\": 64}");
        e = assertThrows(CheckpointException.class, () -> OptConfig.read(noLayers));
        assertTrue(e.getMessage().contains("missing required key num_hidden_layers"), e.getMessage());
    }

    @Test
    void opt350mIsPostLayerNormWithNarrowEmbeddingsAndNoFinalNorm() {
        OptConfig c = OptConfig.shape("opt-350m");
        assertEquals(1024, c.hiddenSize());
        assertEquals(24, c.numLayers());
        assertEquals(16, c.numHeads());
        assertEquals(4096, c.ffnDim());
        assertEquals(512, c.wordEmbedProjDim());
        assertFalse(c.doLayerNormBefore());
        assertFalse(c.hasFinalLayerNorm());
        assertTrue(c.hasProjection());
        assertTrue(OptTensorLayout.of(c, false).stream().noneMatch(e -> e.name().startsWith("decoder.final_layer")));
        assertEquals(331_196_416L, c.parameterCount(), "opt-350m as counted by transformers");
    }

    @Test
    void presetsHaveTheReleasedDimensions() {
        OptConfig c125 = OptConfig.shape("facebook/opt-125m");
        assertEquals(768, c125.hiddenSize());
        assertEquals(12, c125.numLayers());
        assertEquals(50272, c125.vocabSize());
        assertEquals(2048, c125.maxPositionEmbeddings());
        assertEquals(125_239_296L, c125.parameterCount(), "opt-125m as counted by transformers");
        assertEquals(7_087_872L, c125.layerParameterCount());
        assertEquals(2 * 125_239_296L, c125.weightBytes(io.flexstream.tensor.DType.F16));
        OptConfig c175 = OptConfig.shape("opt-175b");
        assertEquals(12288, c175.hiddenSize());
        assertEquals(96, c175.numLayers());
        assertEquals(96, c175.numHeads());
        assertEquals(128, c175.headDim());
        assertEquals(56, OptConfig.shape("opt-30b").numHeads());
        assertEquals(9, OptConfig.knownShapes().size());
    }

    @Test
    void unknownPresetListsKnownOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OptConfig.shape("opt-7b"));
        assertTrue(e.getMessage().contains("opt-125m") && e.getMessage().contains("opt-175b"), e.getMessage());
    }

    @Test
    void tinyHasFourTimesWiderFeedForward() {
        OptConfig c = OptConfig.tiny(32, 1, 2, 100);
        assertEquals(128, c.ffnDim());
        assertEquals(2048, c.maxPositionEmbeddings());
        assertThrows(IllegalArgumentException.class, () -> OptConfig.tiny(0, 1, 1, 100));
    }
}
