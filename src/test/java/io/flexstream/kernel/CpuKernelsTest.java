package io.flexstream.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Differential tests of {@link CpuKernels} against the {@link ScalarKernels} oracle, and bitwise batch-invariance
 * tests. Three worker threads on purpose (more than this machine's cores), so that work really is split and handed
 * out in varying orders.
 */
class CpuKernelsTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    private static Arena arena;
    private static CpuKernels fast;
    private static CpuKernels single;
    private static final ScalarKernels ORACLE = new ScalarKernels();

    @BeforeAll
    static void start() {
        arena = Arena.ofShared(); // kernels read and write the segments from their worker threads
        fast = new CpuKernels(3, 1); // split even the smallest shapes
        single = new CpuKernels(1, 1);
    }

    @AfterAll
    static void stop() {
        fast.close();
        single.close();
        arena.close();
    }

    @ParameterizedTest(name = "m={0} n={1} k={2} bias={3}")
    @CsvSource({
            "1, 1, 1, true", "1, 3, 17, false", "3, 17, 33, true", "17, 33, 100, false", "33, 100, 257, true",
            "100, 257, 3, true", "4, 4, 16, false", "5, 7, 8, true", "257, 33, 17, false", "64, 48, 768, true",
            "37, 70, 3072, true", "1, 101, 768, false", "8, 9, 15, true",
            // decode-like: few rows, many columns per task, so x is the packed operand and w rows are broadcast
            "20, 1000, 33, true", "32, 800, 768, true", "7, 500, 100, false", "33, 2000, 17, true",
            // many rows and more than one column group of panels (> 96 columns), k over two slices
            "257, 200, 300, true", "400, 390, 520, false"})
    void linearMatchesOracle(int m, int n, int k, boolean withBias) {
        var random = new SplittableRandom(31L * m + 7L * n + k);
        float[] x = randomArray(random, m * k);
        float[] w = randomArray(random, n * k);
        float[] b = withBias ? randomArray(random, n) : null;
        float[] expected = linear(ORACLE, x, w, b, m, n, k);
        float[] actual = linear(fast, x, w, b, m, n, k);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double magnitude = b == null ? 0 : Math.abs(b[j]); // sum of |terms| bounds the rounding error
                for (int p = 0; p < k; p++) {
                    magnitude += Math.abs((double) x[i * k + p] * w[j * k + p]);
                }
                double tolerance = 1e-6 * (k + 2) * magnitude + 1e-30;
                float e = expected[i * n + j], a = actual[i * n + j];
                assertTrue(Math.abs(e - a) <= tolerance,
                        () -> "out[" + "row" + "] differs: expected " + e + " got " + a + " tolerance " + tolerance);
            }
        }
    }

    /** One row computed alone must be bitwise the row computed in a batch, whatever the thread count. */
    @ParameterizedTest(name = "m={0} n={1} k={2}")
    @CsvSource({"37, 70, 100", "64, 48, 768", "9, 13, 7", "33, 5, 3072", "32, 800, 100", "17, 1500, 768",
            "300, 200, 520"})
    void linearIsBatchInvariant(int m, int n, int k) {
        var random = new SplittableRandom(m * 1000L + n + k);
        float[] x = randomArray(random, m * k);
        float[] w = randomArray(random, n * k);
        float[] b = randomArray(random, n);
        float[] batch = linear(fast, x, w, b, m, n, k);
        assertArrayEquals(batch, linear(single, x, w, b, m, n, k), "1 thread vs 3 threads");
        for (int i : new int[] {0, 1, m / 2, m - 1}) {
            float[] row = new float[k];
            System.arraycopy(x, i * k, row, 0, k);
            float[] alone = linear(fast, row, w, b, 1, n, k);
            for (int j = 0; j < n; j++) {
                assertEquals(Float.floatToRawIntBits(batch[i * n + j]), Float.floatToRawIntBits(alone[j]),
                        "row " + i + " column " + j + " alone vs in a batch of " + m);
            }
        }
    }

    /** The first calls run interpreted, later ones JIT-compiled: the bits must not change when the code does. */
    @Test
    void linearIsStableAcrossJitTiers() {
        var random = new SplittableRandom(5);
        int m = 6, n = 9, k = 45;
        float[] x = randomArray(random, m * k);
        float[] w = randomArray(random, n * k);
        float[] first = linear(fast, x, w, null, m, n, k);
        for (int i = 0; i < 3000; i++) {
            float[] again = linear(fast, x, w, null, m, n, k);
            if (i % 500 == 0 || i == 2999) {
                assertArrayEquals(first, again, "call " + i);
            }
        }
    }

    @ParameterizedTest(name = "rows={0} dim={1} gamma={2} beta={3} inPlace={4}")
    @CsvSource({
            "1, 1, true, true, false", "3, 7, false, false, false", "17, 17, true, false, true",
            "5, 768, true, true, false", "4, 100, false, true, true", "200, 768, true, true, true",
            "2, 3072, true, true, false"})
    void layerNormMatchesOracle(int rows, int dim, boolean withGamma, boolean withBeta, boolean inPlace) {
        var random = new SplittableRandom(rows * 31L + dim);
        float[] x = randomArray(random, rows * dim);
        for (int i = 0; i < x.length; i++) {
            x[i] = x[i] * 3 + 0.5f; // an offset mean, as activations have
        }
        MemorySegment gamma = withGamma ? segment(randomArray(random, dim)) : null;
        MemorySegment beta = withBeta ? segment(randomArray(random, dim)) : null;
        MemorySegment expected = segment(x);
        ORACLE.layerNorm(expected, gamma, beta, expected, rows, dim, 1e-5f);
        MemorySegment input = segment(x);
        MemorySegment out = inPlace ? input : arena.allocate(4L * x.length, 64);
        fast.layerNorm(input, gamma, beta, out, rows, dim, 1e-5f);
        float[] e = expected.toArray(F), a = out.toArray(F);
        for (int i = 0; i < e.length; i++) {
            assertEquals(e[i], a[i], 1e-5 * (1 + Math.abs(e[i])) * Math.sqrt(dim), "element " + i);
        }
    }

    @ParameterizedTest(name = "n={0}")
    @CsvSource({"1", "17", "1000", "100003"})
    void reluScaleAndAddAreExact(int n) {
        var random = new SplittableRandom(n);
        float[] a = randomArray(random, n), b = randomArray(random, n);
        MemorySegment expected = segment(a), actual = segment(a), addend = segment(b);
        ORACLE.relu(expected, n);
        fast.relu(actual, n);
        assertArrayEquals(expected.toArray(F), actual.toArray(F));
        ORACLE.add(expected, addend, n);
        fast.add(actual, addend, n);
        assertArrayEquals(expected.toArray(F), actual.toArray(F));
        ORACLE.scale(expected, n, 0.125f);
        fast.scale(actual, n, 0.125f);
        assertArrayEquals(expected.toArray(F), actual.toArray(F));
    }

    @ParameterizedTest(name = "batch={0} qLen={1} kvLen={2} capacity={3} heads={4} headDim={5}")
    @CsvSource({
            "3, 12, 12, 16, 2, 64", // prefill, kvLen < capacity
            "4, 1, 9, 16, 3, 64",   // decode
            "2, 3, 10, 10, 2, 20",  // several new tokens against an older cache, headDim not a lane multiple
            "5, 7, 7, 7, 1, 1", "3, 1, 1, 4, 4, 8", "2, 16, 16, 20, 12, 64"})
    void attentionMatchesOracle(int batch, int qLen, int kvLen, int capacity, int heads, int headDim) {
        var input = AttentionInput.random(new SplittableRandom(batch * 131L + qLen * 17L + kvLen), batch, qLen, kvLen,
                capacity, heads, headDim);
        float[] expected = input.run(ORACLE, arena);
        float[] actual = input.run(fast, arena);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 2e-6 * (headDim + kvLen), "element " + i);
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

    /** A sequence attended alone gives bitwise the rows it gets inside a batch, with any thread count. */
    @ParameterizedTest(name = "qLen={0} kvLen={1}")
    @CsvSource({"1, 9", "12, 12", "3, 10"})
    void attentionIsBatchInvariant(int qLen, int kvLen) {
        int batch = 4, capacity = 16, heads = 3, headDim = 20;
        var input = AttentionInput.random(new SplittableRandom(qLen * 7L + kvLen), batch, qLen, kvLen, capacity,
                heads, headDim);
        float[] together = input.run(fast, arena);
        assertArrayEquals(together, input.run(single, arena), "1 thread vs 3 threads");
        int rows = qLen * heads * headDim;
        for (int b = 0; b < batch; b++) {
            float[] alone = input.sequence(b).run(fast, arena);
            for (int i = 0; i < rows; i++) {
                assertEquals(Float.floatToRawIntBits(together[b * rows + i]), Float.floatToRawIntBits(alone[i]),
                        "sequence " + b + " element " + i);
            }
        }
    }

    private static float[] linear(Kernels kernels, float[] x, float[] w, float[] b, int m, int n, int k) {
        MemorySegment out = arena.allocate(4L * m * n, 64);
        kernels.linear(segment(x), segment(w), b == null ? null : segment(b), out, m, n, k);
        return out.toArray(F);
    }

    static float[] randomArray(SplittableRandom random, int length) {
        float[] a = new float[length];
        for (int i = 0; i < length; i++) {
            a[i] = (float) random.nextDouble(-1, 1);
        }
        return a;
    }

    private static MemorySegment segment(float[] values) {
        MemorySegment s = arena.allocate(4L * Math.max(1, values.length), 64);
        MemorySegment.copy(values, 0, s, F, 0, values.length);
        return s;
    }
}
