package io.flexstream.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import io.flexstream.kernel.cuda.CudaKernels;
import io.flexstream.kernel.cuda.CudaProbe;
import io.flexstream.kernel.cuda.DeviceInfo;
import io.flexstream.kernel.cuda.RequiresGpu;
import io.flexstream.kernel.cuda.WeightTrust;
import io.flexstream.quant.QuantizedLinear;
import io.flexstream.quant.QuantizedMatrix;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Differential tests of the cuda backend against the {@link ScalarKernels} oracle (and the 4-bit product against
 * {@link QuantizedLinear#linearReference}), plus bitwise batch and chunk invariance. Runs where a GPU is usable and is
 * skipped, with the probe's reason, everywhere else. (In this package to share {@link AttentionInput}.)
 *
 * <p>Two instances: {@code big} with roomy staging chunks and a weight cache that holds everything, elementwise ops on
 * the device; {@code small} with 4 KiB chunks (every call becomes many pipelined chunks), a 64 KiB weight budget
 * (eviction and the uncached path) and verified weights.
 */
@ExtendWith(RequiresGpu.class)
class CudaKernelsTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final ScalarKernels ORACLE = new ScalarKernels();

    private static Arena arena;
    private static CudaKernels big;
    private static CudaKernels small;

    @BeforeAll
    static void start() {
        DeviceInfo device = ((CudaProbe.Available) CudaProbe.probe()).device();
        arena = Arena.ofShared();
        big = new CudaKernels(device, new CudaKernels.Config(1L << 30, WeightTrust.STABLE, 32L << 20, true, 1));
        small = new CudaKernels(device, new CudaKernels.Config(64L << 10, WeightTrust.VERIFY, 4096, true, 1));
    }

    @AfterAll
    static void stop() {
        big.close();
        small.close();
        arena.close();
    }

    @ParameterizedTest(name = "m={0} n={1} k={2} bias={3}")
    @CsvSource({
            "1, 1, 1, true", "1, 3, 17, false", "3, 17, 33, true", "17, 33, 100, false", "33, 100, 257, true",
            "100, 257, 3, true", "65, 64, 16, false", "64, 65, 15, true", "257, 33, 17, false", "64, 48, 768, true",
            "37, 70, 3072, true", "1, 1001, 768, false", "130, 129, 200, true"})
    void linearMatchesOracle(int m, int n, int k, boolean withBias) {
        var random = new SplittableRandom(31L * m + 7L * n + k);
        float[] x = randomArray(random, m * k);
        float[] w = randomArray(random, n * k);
        float[] b = withBias ? randomArray(random, n) : null;
        float[] expected = linear(ORACLE, x, w, b, m, n, k);
        for (CudaKernels cuda : new CudaKernels[] {big, small}) {
            float[] actual = linear(cuda, x, w, b, m, n, k);
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double magnitude = b == null ? 0 : Math.abs(b[j]);
                    for (int p = 0; p < k; p++) {
                        magnitude += Math.abs((double) x[i * k + p] * w[j * k + p]);
                    }
                    double tolerance = 1e-6 * (k + 2) * magnitude + 1e-30;
                    float e = expected[i * n + j], a = actual[i * n + j];
                    int row = i, col = j;
                    assertTrue(Math.abs(e - a) <= tolerance, () -> cuda.name() + " out[" + row + "][" + col
                            + "]: expected " + e + " got " + a + " tolerance " + tolerance);
                }
            }
        }
    }

    /** Rows alone, rows in a batch, one chunk or many: the same bits. */
    @ParameterizedTest(name = "m={0} n={1} k={2}")
    @CsvSource({"37, 70, 100", "130, 48, 768", "9, 13, 7", "3, 2000, 64"})
    void linearIsBatchAndChunkInvariant(int m, int n, int k) {
        var random = new SplittableRandom(m * 1000L + n + k);
        float[] x = randomArray(random, m * k);
        float[] w = randomArray(random, n * k);
        float[] b = randomArray(random, n);
        float[] together = linear(big, x, w, b, m, n, k);
        assertArrayEquals(together, linear(small, x, w, b, m, n, k), "one chunk vs 4 KiB chunks");
        for (int i = 0; i < m; i += Math.max(1, m / 5)) {
            float[] row = new float[k];
            System.arraycopy(x, i * k, row, 0, k);
            float[] alone = linear(big, row, w, b, 1, n, k);
            for (int j = 0; j < n; j++) {
                assertEquals(Float.floatToRawIntBits(together[i * n + j]), Float.floatToRawIntBits(alone[j]),
                        "row " + i + " column " + j);
            }
        }
    }

    @ParameterizedTest(name = "m={0} n={1} k={2} group={3}")
    @CsvSource({"1, 5, 64, 64", "7, 33, 100, 64", "64, 70, 768, 64", "3, 9, 40, 8", "130, 65, 2048, 64",
            "20, 17, 96, 32"})
    void quantizedLinearMatchesTheReference(int m, int n, int k, int group) {
        var random = new SplittableRandom(m * 17L + n * 3L + k);
        MemorySegment x = segment(randomArray(random, m * k));
        QuantizedMatrix w = QuantizedMatrix.quantize(segment(randomArray(random, n * k)), n, k, group, arena);
        MemorySegment bias = segment(randomArray(random, n));
        MemorySegment expected = arena.allocate(4L * m * n, 64);
        QuantizedLinear.linearReference(x, w, bias, expected, m, n, k);
        float[] e = expected.toArray(F);
        float[] first = null;
        for (CudaKernels cuda : new CudaKernels[] {big, small}) {
            MemorySegment out = arena.allocate(4L * m * n, 64);
            cuda.linearQuantized(x, w, bias, out, m, n, k);
            float[] a = out.toArray(F);
            for (int i = 0; i < e.length; i++) {
                // Dequantized weights are within [min, max] of their group, so |terms| <= |x| * 1: k * ulp-ish.
                assertEquals(e[i], a[i], 2e-6 * (k + 2) * (1 + Math.abs(e[i])), cuda.name() + " element " + i);
            }
            if (first == null) {
                first = a;
            } else {
                assertArrayEquals(first, a, "one chunk vs 4 KiB chunks");
            }
        }
    }

    @ParameterizedTest(name = "rows={0} dim={1} gamma={2} beta={3} inPlace={4}")
    @CsvSource({
            "1, 1, true, true, false", "3, 7, false, false, false", "17, 17, true, false, true",
            "5, 768, true, true, false", "4, 100, false, true, true", "200, 768, true, true, true",
            "2, 3072, true, true, false", "3, 8192, true, true, true"})
    void layerNormMatchesOracle(int rows, int dim, boolean withGamma, boolean withBeta, boolean inPlace) {
        var random = new SplittableRandom(rows * 31L + dim);
        float[] x = randomArray(random, rows * dim);
        for (int i = 0; i < x.length; i++) {
            x[i] = x[i] * 3 + 0.5f;
        }
        MemorySegment gamma = withGamma ? segment(randomArray(random, dim)) : null;
        MemorySegment beta = withBeta ? segment(randomArray(random, dim)) : null;
        MemorySegment expected = segment(x);
        ORACLE.layerNorm(expected, gamma, beta, expected, rows, dim, 1e-5f);
        float[] e = expected.toArray(F);
        for (CudaKernels cuda : new CudaKernels[] {big, small}) {
            MemorySegment input = segment(x);
            MemorySegment out = inPlace ? input : arena.allocate(4L * x.length, 64);
            cuda.layerNorm(input, gamma, beta, out, rows, dim, 1e-5f);
            float[] a = out.toArray(F);
            for (int i = 0; i < e.length; i++) {
                assertEquals(e[i], a[i], 1e-5 * (1 + Math.abs(e[i])) * Math.sqrt(dim), cuda.name() + " element " + i);
            }
        }
    }

    /** One IEEE operation per element: the device kernels give the oracle's bits, across many chunks too. */
    @ParameterizedTest(name = "n={0}")
    @CsvSource({"1", "17", "1000", "100003", "3000001"})
    void reluScaleAndAddOnTheDeviceAreExact(int n) {
        var random = new SplittableRandom(n);
        float[] a = randomArray(random, n), b = randomArray(random, n);
        a[0] = n > 1 ? Float.NaN : -0f; // Math.max semantics: NaN propagates, -0 becomes +0
        if (n > 2) {
            a[2] = -0f;
        }
        for (CudaKernels cuda : new CudaKernels[] {big, small}) {
            MemorySegment expected = segment(a), actual = segment(a), addend = segment(b);
            ORACLE.relu(expected, n);
            cuda.relu(actual, n);
            assertArrayEquals(expected.toArray(F), actual.toArray(F));
            ORACLE.add(expected, addend, n);
            cuda.add(actual, addend, n);
            assertArrayEquals(expected.toArray(F), actual.toArray(F));
            ORACLE.scale(expected, n, 0.125f);
            cuda.scale(actual, n, 0.125f);
            assertArrayEquals(expected.toArray(F), actual.toArray(F));
        }
    }

    @ParameterizedTest(name = "batch={0} qLen={1} kvLen={2} capacity={3} heads={4} headDim={5}")
    @CsvSource({
            "3, 12, 12, 16, 2, 64", "4, 1, 9, 16, 3, 64", "2, 3, 10, 10, 2, 20", "5, 7, 7, 7, 1, 1",
            "3, 1, 1, 4, 4, 8", "2, 16, 16, 20, 12, 64", "6, 1, 300, 310, 4, 64", "2, 40, 40, 48, 2, 256",
            "9, 1, 33, 40, 2, 33"})
    void attentionMatchesOracle(int batch, int qLen, int kvLen, int capacity, int heads, int headDim) {
        var input = AttentionInput.random(new SplittableRandom(batch * 131L + qLen * 17L + kvLen), batch, qLen, kvLen,
                capacity, heads, headDim);
        float[] expected = input.run(ORACLE, arena);
        for (CudaKernels cuda : new CudaKernels[] {big, small}) {
            float[] actual = input.run(cuda, arena);
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], actual[i], 2e-6 * (headDim + kvLen), cuda.name() + " element " + i);
            }
            int hidden = heads * headDim;
            for (int b = 0; b < batch; b++) {
                for (int t = 0; t < qLen; t++) {
                    if (input.seesNoKey(b, t)) {
                        for (int d = 0; d < hidden; d++) {
                            assertEquals(0f, actual[(b * qLen + t) * hidden + d], "masked query " + b + "/" + t);
                        }
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "qLen={0} kvLen={1}")
    @CsvSource({"1, 9", "12, 12", "3, 10"})
    void attentionIsBatchAndChunkInvariant(int qLen, int kvLen) {
        int batch = 4, capacity = 16, heads = 3, headDim = 20;
        var input = AttentionInput.random(new SplittableRandom(qLen * 7L + kvLen), batch, qLen, kvLen, capacity,
                heads, headDim);
        float[] together = input.run(big, arena);
        assertArrayEquals(together, input.run(small, arena), "one chunk vs one sequence per chunk");
        int rows = qLen * heads * headDim;
        for (int b = 0; b < batch; b++) {
            float[] alone = input.sequence(b).run(big, arena);
            for (int i = 0; i < rows; i++) {
                assertEquals(Float.floatToRawIntBits(together[b * rows + i]), Float.floatToRawIntBits(alone[i]),
                        "sequence " + b + " element " + i);
            }
        }
    }

    @Test
    void attentionBeyondSharedMemoryIsRefusedWithTheLimit() {
        MemorySegment one = arena.allocate(4L * 20000 * 64, 64);
        var e = assertThrows(IllegalArgumentException.class, () -> big.attention(one, one, one, one, one, 1, 1,
                12000, 12000, 1, 64));
        assertTrue(e.getMessage().contains("shared memory"), e.getMessage());
    }

    @Test
    void argmaxMatchesAFirstMaximumScan() {
        var random = new SplittableRandom(3);
        int rows = 7, cols = 50272;
        float[] logits = randomArray(random, rows * cols);
        logits[1 * cols + 7] = 5f;               // row 1: a tie, the lower index wins
        logits[1 * cols + 40000] = 5f;
        for (int c = 0; c < cols; c++) {         // row 2: all NaN but one
            logits[2 * cols + c] = Float.NaN;
        }
        logits[2 * cols + 12345] = -3f;
        for (int c = 0; c < cols; c++) {         // row 3: all -inf: index 0
            logits[3 * cols + c] = Float.NEGATIVE_INFINITY;
        }
        logits[4 * cols + cols - 1] = 9f;        // row 4: the last column
        for (CudaKernels cuda : new CudaKernels[] {big, small}) {
            int[] got = cuda.argmaxRows(segment(logits), rows, cols);
            for (int r = 0; r < rows; r++) {
                int best = -1;
                for (int c = 0; c < cols; c++) {
                    float v = logits[r * cols + c];
                    if (!Float.isNaN(v) && (best < 0 || v > logits[r * cols + best])) {
                        best = c;
                    }
                }
                assertEquals(Math.max(best, 0), got[r], cuda.name() + " row " + r);
            }
        }
    }

    /** The offloading engine rewrites a weight buffer in place: a verified cache must see the new bytes. */
    @Test
    void aVerifiedCacheSeesAWeightRewrittenInPlace() {
        int m = 5, n = 40, k = 24;
        var random = new SplittableRandom(11);
        float[] x = randomArray(random, m * k);
        MemorySegment w = segment(randomArray(random, n * k));
        MemorySegment xs = segment(x);
        MemorySegment out = arena.allocate(4L * m * n, 64);
        MemorySegment expected = arena.allocate(4L * m * n, 64);
        for (int round = 0; round < 3; round++) {
            MemorySegment.copy(randomArray(random, n * k), 0, w, F, 0, n * k);
            ORACLE.linear(xs, w, null, expected, m, n, k);
            small.linear(xs, w, null, out, m, n, k);
            float[] e = expected.toArray(F), a = out.toArray(F);
            for (int i = 0; i < e.length; i++) {
                assertEquals(e[i], a[i], 1e-4, "round " + round + " element " + i);
            }
        }
    }

    /** Memory freed and allocated again (maybe at the same address) is another weight to a scope-keyed cache. */
    @Test
    void aStableCacheDoesNotReuseFreedMemory() {
        int m = 3, n = 64, k = 64;
        var random = new SplittableRandom(12);
        MemorySegment xs = segment(randomArray(random, m * k));
        MemorySegment out = arena.allocate(4L * m * n, 64);
        MemorySegment expected = arena.allocate(4L * m * n, 64);
        for (int round = 0; round < 4; round++) {
            try (Arena weights = Arena.ofConfined()) {
                MemorySegment w = weights.allocate(4L * n * k, 64);
                MemorySegment.copy(randomArray(random, n * k), 0, w, F, 0, n * k);
                ORACLE.linear(xs, w, null, expected, m, n, k);
                big.linear(xs, w, null, out, m, n, k);
                float[] e = expected.toArray(F), a = out.toArray(F);
                for (int i = 0; i < e.length; i++) {
                    assertEquals(e[i], a[i], 1e-4, "round " + round + " element " + i);
                }
            }
        }
    }

    static float[] randomArray(SplittableRandom random, int length) {
        return CpuKernelsTest.randomArray(random, length);
    }

    private static MemorySegment segment(float[] values) {
        MemorySegment s = arena.allocate(4L * values.length, 64);
        MemorySegment.copy(values, 0, s, F, 0, values.length);
        return s;
    }

    private static float[] linear(Kernels kernels, float[] x, float[] w, float[] b, int m, int n, int k) {
        MemorySegment out = arena.allocate(4L * m * n, 64);
        kernels.linear(segment(x), segment(w), b == null ? null : segment(b), out, m, n, k);
        return out.toArray(F);
    }
}
