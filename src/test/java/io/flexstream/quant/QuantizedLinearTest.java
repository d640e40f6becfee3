package io.flexstream.quant;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The weight layout against the generic quantizer, and the fused kernel against dequantize-then-reference. */
class QuantizedLinearTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final Arena ARENA = Arena.ofShared();
    private static final QuantizedLinear KERNEL = new QuantizedLinear(2);

    @AfterAll
    static void close() {
        KERNEL.close();
        ARENA.close();
    }

    private static MemorySegment random(Random rnd, int count, double sigma) {
        MemorySegment s = ARENA.allocate((long) count * Float.BYTES, 64);
        for (int i = 0; i < count; i++) {
            s.setAtIndex(F, i, (float) (rnd.nextGaussian() * sigma));
        }
        return s;
    }

    /** Same groups, codes and metadata as FlexGen's quantizer along axis 1; only the byte order differs. */
    @Test
    void matrixLayoutMatchesGenericQuantizerAlongInputAxis() {
        Random rnd = new Random(1);
        int rows = 7;
        int cols = 150; // 3 groups, the last one 22 real + 42 padding
        MemorySegment w = random(rnd, rows * cols, 0.05);
        QuantizedMatrix qm = QuantizedMatrix.quantize(w, rows, cols, 64, ARENA);
        float[] data = w.toArray(ValueLayout.JAVA_FLOAT);
        QuantizedTensor qt = GroupQuantizer.flexGen().quantize(data, new int[]{rows, cols}, 1);
        byte[] packed = qt.packed();
        float[] meta = qt.metadata();
        int gpr = qt.groups();
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                byte b = packed[r * gpr * 32 + c / 2];
                assertEquals(QuantizedTensor.nibble(b, c % 2 == 0), qm.code(r, c), "code " + r + "," + c);
            }
            for (int g = 0; g < gpr; g++) {
                assertEquals(meta[(r * gpr + g) * 2], qm.scale(r, g));
                assertEquals(meta[(r * gpr + g) * 2 + 1], qm.min(r, g));
            }
        }
        MemorySegment back = ARENA.allocate((long) rows * cols * 4);
        qm.dequantize(back);
        float[] expected = GroupQuantizer.dequantize(qt);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], back.getAtIndex(F, i));
        }
    }

    @Test
    void compressedWeightsTakeAtMost029OfFp16() {
        QuantizedMatrix qm = QuantizedMatrix.quantize(ARENA.allocate(256L * 2048 * 4), 256, 2048, 64, ARENA);
        assertEquals(36L * 256 * 2048 / 64, qm.bytes());
        assertTrue(qm.bytes() <= 0.29 * qm.fp16Bytes());
    }

    @Test
    void fusedMatchesDequantizeThenReferenceOnOddShapes() {
        Random rnd = new Random(7);
        int[][] shapes = {{1, 5, 64}, {1, 33, 100}, {3, 17, 129}, {4, 9, 64}, {5, 31, 200}, {9, 40, 1000}, {2, 3, 1},
            {21, 19, 130}}; // m, n, k; the last takes the prefill path
        for (int[] s : shapes) {
            int m = s[0];
            int n = s[1];
            int k = s[2];
            MemorySegment x = random(rnd, m * k, 1.0);
            MemorySegment w = random(rnd, n * k, 0.02);
            MemorySegment bias = random(rnd, n, 0.1);
            QuantizedMatrix qm = QuantizedMatrix.quantize(w, n, k, 64, ARENA);
            MemorySegment ref = ARENA.allocate((long) m * n * 4);
            MemorySegment got = ARENA.allocate((long) m * n * 4);
            QuantizedLinear.linearReference(x, qm, bias, ref, m, n, k);
            KERNEL.linear(x, qm, bias, got, m, n, k);
            float[] row = new float[k];
            for (int j = 0; j < n; j++) {
                qm.dequantizeRow(j, row);
                for (int i = 0; i < m; i++) {
                    double mag = Math.abs(bias.getAtIndex(F, j));
                    for (int p = 0; p < k; p++) {
                        mag += Math.abs(x.getAtIndex(F, (long) i * k + p) * row[p]);
                    }
                    float r = ref.getAtIndex(F, (long) i * n + j);
                    float v = got.getAtIndex(F, (long) i * n + j);
                    assertEquals(r, v, 1e-5 * mag, "m" + m + " n" + n + " k" + k + " at " + i + "," + j);
                }
            }
        }
    }

    /** Constant and all-zero weight rows (scale clamped, not inf) decode to their constant: no NaN reaches y. */
    @Test
    void constantWeightRowsGiveExactProductsWithoutNaN() {
        int m = 20;
        int n = 6;
        int k = 100;
        MemorySegment w = ARENA.allocate((long) n * k * 4);
        for (int j = 0; j < n; j++) {
            for (int p = 0; p < k; p++) {
                w.setAtIndex(F, (long) j * k + p, j == 0 ? 0f : 0.25f * j);
            }
        }
        MemorySegment x = ARENA.allocate((long) m * k * 4);
        for (int p = 0; p < m * k; p++) {
            x.setAtIndex(F, p, 1f);
        }
        QuantizedMatrix qm = QuantizedMatrix.quantize(w, n, k, 64, ARENA);
        for (int mm : new int[]{1, m}) { // register path and prefill path
            MemorySegment y = ARENA.allocate((long) mm * n * 4);
            KERNEL.linear(x, qm, null, y, mm, n, k);
            for (int i = 0; i < mm; i++) {
                for (int j = 0; j < n; j++) {
                    // group 2 holds 36 constants and 28 zeros of padding: min 0 and max 0.25j are both exact codes
                    assertEquals(0.25f * j * k, y.getAtIndex(F, (long) i * n + j), 1e-6f * k, "row " + j);
                }
            }
        }
    }

    /** Each output element is bitwise the same alone, in any row of a batch, and with any thread count. */
    @Test
    void fusedIsBatchInvariantAcrossRegisterBlocks() {
        batchInvariance(15, 300); // 8 + 4 + 3 rows: the 8x1, 4x1, 1x4 and 1x1 blocks against m = 1
    }

    @Test
    void fusedIsBatchInvariantAcrossThePrefillPath() {
        batchInvariance(23, 200); // the dequantized-scratch 4x4 and 1x4 tiles against m = 1
    }

    private static void batchInvariance(int m, int k) {
        Random rnd = new Random(11);
        int n = 37;
        MemorySegment x = random(rnd, m * k, 1.0);
        QuantizedMatrix qm = QuantizedMatrix.quantize(random(rnd, n * k, 0.02), n, k, 64, ARENA);
        MemorySegment all = ARENA.allocate((long) m * n * 4);
        KERNEL.linear(x, qm, null, all, m, n, k);
        try (QuantizedLinear single = new QuantizedLinear(1)) {
            for (int i = 0; i < m; i++) {
                MemorySegment one = ARENA.allocate((long) n * 4);
                single.linear(x.asSlice((long) i * k * 4, (long) k * 4), qm, null, one, 1, n, k);
                for (int j = 0; j < n; j++) {
                    assertEquals(Float.floatToRawIntBits(all.getAtIndex(F, (long) i * n + j)),
                            Float.floatToRawIntBits(one.getAtIndex(F, j)), "row " + i + " col " + j);
                }
            }
        }
    }
}
