package io.flexstream.model;

import io.flexstream.tensor.DType;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TinyModelTest {

    @TempDir
    Path dir;

    /** Storing in dtype and widening again rounds exactly like DType.write then DType.read. */
    private static float rounded(DType dtype, float v) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(4);
            dtype.write(one, 0, v);
            return dtype.read(one, 0);
        }
    }

    private static void assertSameWeights(OptWeights expected, OptWeights actual, DType dtype) {
        Map<String, MemorySegment> e = expected.tensors();
        Map<String, MemorySegment> a = actual.tensors();
        assertEquals(e.keySet(), a.keySet());
        for (String name : e.keySet()) {
            MemorySegment x = e.get(name);
            MemorySegment y = a.get(name);
            assertEquals(x.byteSize(), y.byteSize(), name);
            for (long i = 0; i < x.byteSize() / 4; i++) {
                float want = rounded(dtype, x.getAtIndex(ValueLayout.JAVA_FLOAT, i));
                float got = y.getAtIndex(ValueLayout.JAVA_FLOAT, i);
                if (want != got) {
                    assertEquals(want, got, name + "[" + i + "]");
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void writtenCheckpointLoadsBackAsTheRandomWeights(DType dtype) {
        OptConfig config = OptConfig.tiny(32, 2, 4, 300);
        TinyModel.writeWeights(dir, config, 11, dtype, TinyModel.Options.defaults());
        try (Arena arena = Arena.ofShared(); Checkpoint ckpt = Checkpoint.open(dir)) {
            assertEquals(TinyModel.torchName(dtype), ckpt.config().torchDtype());
            assertTrue(ckpt.tensorNames().stream().allMatch(n -> ckpt.tensor(n).dtype() == dtype));
            OptWeights loaded = OptWeights.load(ckpt, arena);
            assertSameWeights(OptWeights.random(config, 11, arena), loaded, dtype);
            assertTrue(loaded.tiedLmHead());
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void postLayerNormShardedBareCheckpointLoadsBackToo(DType dtype) {
        OptConfig config = OptConfig.custom(32, 2, 4, 48, 300, 64, 16, false);
        TinyModel.writeWeights(dir, config, 4, dtype, new TinyModel.Options(false, false, 2));
        try (Arena arena = Arena.ofShared(); Checkpoint ckpt = Checkpoint.open(dir)) {
            OptWeights loaded = OptWeights.load(ckpt, arena);
            assertSameWeights(OptWeights.random(config, 4, arena), loaded, dtype);
        }
    }

    @Test
    void fullWriteAddsTokenizerFilesMatchingTheVocabulary() throws Exception {
        OptConfig config = OptConfig.tiny(16, 1, 2, 1000);
        TinyModel.write(dir, config, 0, DType.F16);
        for (String f : new String[] {"config.json", "model.safetensors", "vocab.json", "merges.txt",
                "tokenizer_config.json", "special_tokens_map.json"}) {
            assertTrue(Files.exists(dir.resolve(f)), f);
        }
        Map<?, ?> vocab = new ObjectMapper().readValue(dir.resolve("vocab.json").toFile(), Map.class);
        assertEquals(1000, vocab.size());
        assertEquals(2, vocab.get("</s>"));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertEquals(config.withTorchDtype("float16"), ckpt.config());
        }
    }

    @Test
    void vocabularyTooSmallForATokenizerIsRefusedBeforeWriting() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TinyModel.write(dir.resolve("small"), OptConfig.tiny(16, 1, 2, 100), 0, DType.F32));
        assertTrue(e.getMessage().contains("vocab_size 100"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("small")));
    }
}
