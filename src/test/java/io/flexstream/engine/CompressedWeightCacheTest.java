package io.flexstream.engine;

import io.flexstream.kernel.CpuKernels;
import io.flexstream.model.Checkpoint;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.model.TinyModel;
import io.flexstream.quant.QuantizedMatrix;
import io.flexstream.tensor.DType;
import io.flexstream.tier.TierShares;
import io.flexstream.tier.Tiers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Compressed weights are quantized on the first start only: later starts map the cache file; a truncated, corrupt or
 * stale file is rebuilt; the engines give the same tokens from the cache as from quantizing afresh.
 */
class CompressedWeightCacheTest {

    @TempDir
    static Path dir;
    static Path model;
    static Arena arena;
    static OptWeights weights;
    static CpuKernels kernels;

    @BeforeAll
    static void setUp() {
        model = dir.resolve("tiny-opt");
        TinyModel.write(model, OptConfig.tiny(128, 2, 2, 50272), 5, DType.F32);
        arena = Arena.ofShared();
        try (Checkpoint c = Checkpoint.open(model)) {
            weights = OptWeights.load(c, arena);
        }
        kernels = new CpuKernels();
    }

    @AfterAll
    static void tearDown() {
        kernels.close();
        arena.close();
    }

    private static List<byte[]> bytesOf(List<DecoderWeights> layers) {
        List<byte[]> out = new ArrayList<>();
        for (DecoderWeights d : layers) {
            for (LinearWeight w : List.of(d.q(), d.k(), d.v(), d.out(), d.fc1(), d.fc2())) {
                QuantizedMatrix m = ((LinearWeight.Quantized) w).weight();
                out.add(m.packed().toArray(ValueLayout.JAVA_BYTE));
                out.add(m.metadata().toArray(ValueLayout.JAVA_BYTE));
            }
        }
        return out;
    }

    private static List<byte[]> freshlyQuantized() {
        try (Arena a = Arena.ofConfined()) {
            OptConfig c = weights.config();
            return bytesOf(weights.layers().stream().map(l -> DecoderWeights.quantize(l, c.hiddenSize(), c.ffnDim(),
                    a)).toList());
        }
    }

    private static void assertSameBytes(List<byte[]> expected, List<byte[]> got) {
        assertEquals(expected.size(), got.size());
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i), got.get(i), "tensor " + i);
        }
    }

    /** Opens the cache, checks its layers are FlexGen's quantization of the checkpoint, returns layers quantized. */
    private static int openAndCheck(Path cacheDir) {
        try (CompressedWeightCache cache = CompressedWeightCache.open(model, cacheDir, weights)) {
            assertSameBytes(freshlyQuantized(), bytesOf(cache.layers()));
            return cache.quantizedLayers();
        }
    }

    @Test
    void theSecondOpenMapsTheCacheInsteadOfQuantizing(@TempDir Path cacheDir) throws IOException {
        assertEquals(2, openAndCheck(cacheDir), "first start quantizes every layer");
        Path file;
        try (CompressedWeightCache cache = CompressedWeightCache.open(model, cacheDir, weights)) {
            file = cache.file();
            assertEquals(0, cache.quantizedLayers(), "second start must not quantize");
        }
        assertEquals(CompressedWeightCache.HEADER_BYTES + CompressedWeightCache.payloadBytes(weights.config()),
                Files.size(file));
        try (var files = Files.list(cacheDir)) {
            assertEquals(List.of(file), files.toList(), "no temporary file is left behind");
        }
    }

    @Test
    void aTruncatedCorruptOrStaleCacheIsRebuilt(@TempDir Path cacheDir) throws IOException {
        assertEquals(2, openAndCheck(cacheDir));
        Path file;
        try (CompressedWeightCache cache = CompressedWeightCache.open(model, cacheDir, weights)) {
            file = cache.file();
        }
        long size = Files.size(file);
        // truncated (an interrupted copy, a full disk)
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(size - 1000);
        }
        assertEquals(2, openAndCheck(cacheDir), "a truncated cache is rebuilt");
        assertEquals(size, Files.size(file));
        assertEquals(0, openAndCheck(cacheDir));
        // one flipped byte in the payload
        flipByte(file, size - 7);
        assertEquals(2, openAndCheck(cacheDir), "a corrupt cache is rebuilt");
        assertEquals(0, openAndCheck(cacheDir));
        // a layout version this build does not write
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {99, 0, 0, 0}), 8);
        }
        assertEquals(2, openAndCheck(cacheDir), "a cache of another layout version is rebuilt");
        // the checkpoint changed since the cache was written
        Path weightsFile = model.resolve("model.safetensors");
        Files.setLastModifiedTime(weightsFile, FileTime.fromMillis(Files.getLastModifiedTime(weightsFile).toMillis()
                + 60_000));
        assertEquals(2, openAndCheck(cacheDir), "a cache of an older checkpoint is rebuilt");
        assertEquals(0, openAndCheck(cacheDir));
    }

    private static void flipByte(Path file, long at) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, at);
            b.put(0, (byte) (b.get(0) ^ 0x10)).rewind();
            ch.write(b, at);
        }
    }

    @Test
    void anUnwritableCacheDirectoryFallsBackToQuantizingInMemory() throws IOException {
        Path blocker = Files.writeString(dir.resolve("not-a-directory"), "x");
        try (CompressedWeightCache cache = CompressedWeightCache.open(model, blocker.resolve("cache"), weights)) {
            assertNull(cache.file());
            assertEquals(2, cache.quantizedLayers());
            assertSameBytes(freshlyQuantized(), bytesOf(cache.layers()));
        }
    }

    /**
     * Both engines loaded twice from the checkpoint directory with --compress-weight: the first load writes the cache
     * (under the default .flexstream-cache), the second leaves the file alone, and every run gives the tokens of
     * quantizing the same weights in memory.
     */
    @Test
    void enginesLoadedFromTheCacheGiveTheTokensOfQuantizingAfresh(@TempDir Path offload) throws Exception {
        EngineOptions options = EngineOptions.defaults().withCompressWeight(true);
        List<PreparedPrompt> prompts = new ArrayList<>();
        List<GenerationResult> expected;
        try (OptGenerator fresh = new OptGenerator(weights, null, kernels, "tiny", options)) {
            for (int i = 0; i < 3; i++) {
                prompts.add(fresh.prepare(GenerationRequest.tokens("w" + i, new int[] {2, 100 + i, 2000 + 7 * i, 31},
                        SamplingParams.greedy(6))));
            }
            expected = fresh.generate(prompts);
        }
        Path cacheDir = model.resolve(".flexstream-cache");
        Object fileKey = null;
        for (int start = 0; start < 2; start++) {
            try (Generator g = OptGenerator.load(model, new CpuKernels(), options)) {
                assertTokens(expected, g.generate(prompts));
            }
            Path file;
            try (var files = Files.list(cacheDir)) {
                file = files.findFirst().orElseThrow();
            }
            Object key = Files.readAttributes(file, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
            assertNotNull(key);
            if (start == 1) {
                assertEquals(fileKey, key, "the second start must not rewrite the cache");
            }
            fileKey = key;
        }
        Placement placement = new Placement(2, 2, new TierShares(0, 0.5), TierShares.ALL_DEVICE,
                TierShares.ALL_DEVICE, false, ScheduleKind.ZIGZAG);
        Tiers tiers = new Tiers(64L << 20, 64L << 20, offload, 1L << 30, true);
        try (Generator g = Engines.open(model, new CpuKernels(), options, placement, tiers)) {
            assertTokens(expected, g.generate(prompts));
        }
        try (var files = Files.list(cacheDir)) {
            Path file = files.findFirst().orElseThrow();
            assertEquals(fileKey, Files.readAttributes(file, java.nio.file.attribute.BasicFileAttributes.class)
                    .fileKey(), "the offloading engine used the same cache file");
        }
        assertTrue(Files.isDirectory(cacheDir));
    }

    private static void assertTokens(List<GenerationResult> expected, List<GenerationResult> got) {
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i).tokenIds(), got.get(i).tokenIds(), "prompt " + i);
        }
    }
}
