package io.flexstream.quant;

import io.flexstream.kernel.ScalarKernels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The compressed KV cache row ({@link KvRowFormat}) reproduces FlexGen's cache grouping exactly, appends without
 * touching older rows and meets the 0.29x-of-fp16 budget; attention read compressed ({@link QuantizedAttention}, vector
 * and scalar paths) matches dequantize-the-cache-then-reference-attention on odd shapes.
 */
class QuantizedAttentionTest {

    private static final Arena ARENA = Arena.ofShared();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    @AfterAll
    static void close() {
        ARENA.close();
    }

    private static MemorySegment gaussian(SplittableRandom rnd, long values, double scale) {
        MemorySegment s = ARENA.allocate(values * 4, 64);
        for (long i = 0; i < values; i++) {
            s.setAtIndex(F, i, (float) (nextGaussian(rnd) * scale));
        }
        return s;
    }

    private static double nextGaussian(SplittableRandom rnd) {
        double u = rnd.nextDouble(1e-12, 1);
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd.nextDouble());
    }

    @Test
    void rowsAreFlexGensCacheGroupingAlongTheHeadDimension() {
        SplittableRandom rnd = new SplittableRandom(5);
        int heads = 3;
        for (int headDim : new int[] {16, 20, 64, 80, 128}) {
            KvRowFormat f = KvRowFormat.of(heads, headDim);
            assertEquals(Math.min(64, (headDim + 7) / 8 * 8), f.groupSize());
            int positions = 4;
            MemorySegment rows = ARENA.allocate(positions * f.rowBytes());
            float[][] expected = new float[positions][];
            byte[] firstRow = null;
            for (int pos = 0; pos < positions; pos++) {
                MemorySegment token = gaussian(rnd, (long) heads * headDim, 1);
                f.quantize(token, 0, rows, pos * f.rowBytes());
                // FlexGen: (heads, headDim) grouped along headDim with fp16 metadata, the last group zero-padded
                float[] data = token.toArray(F);
                expected[pos] = GroupQuantizer.dequantize(new GroupQuantizer(f.groupSize(), MetadataPrecision.FP16)
                        .quantize(data, new int[] {heads, headDim}, 1));
                if (pos == 0) {
                    firstRow = rows.asSlice(0, f.rowBytes()).toArray(ValueLayout.JAVA_BYTE);
                }
            }
            float[] back = new float[heads * headDim];
            for (int pos = 0; pos < positions; pos++) {
                f.dequantize(rows, pos * f.rowBytes(), back);
                assertArrayEquals(expected[pos], back, "headDim " + headDim + " position " + pos);
            }
            // appending later positions left the first row's bytes as they were
            assertArrayEquals(firstRow, rows.asSlice(0, f.rowBytes()).toArray(ValueLayout.JAVA_BYTE));
        }
    }

    @Test
    void aRowTakesAtMost029OfFp16WithHeadDim64Or128() {
        for (int headDim : new int[] {64, 128}) {
            KvRowFormat f = KvRowFormat.of(12, headDim);
            assertEquals(12L * headDim / 64 * 36, f.rowBytes());
            assertTrue(f.rowBytes() <= 0.29 * f.fp16RowBytes(), "headDim " + headDim);
        }
    }

    @Test
    void constantAndTinyRangeTokensDecodeFinite() {
        KvRowFormat f = KvRowFormat.of(2, 64);
        MemorySegment token = ARENA.allocate(2 * 64 * 4);
        for (int d = 0; d < 64; d++) {
            token.setAtIndex(F, d, 0.75f);                    // head 0 constant
            token.setAtIndex(F, 64 + d, 1f + d * 1e-7f);      // head 1 range far below fp16's 2.3e-4 limit
        }
        MemorySegment row = ARENA.allocate(f.rowBytes());
        f.quantize(token, 0, row, 0);
        float[] back = new float[128];
        f.dequantize(row, 0, back);
        for (int d = 0; d < 64; d++) {
            assertEquals(0.75f, back[d], 0f);
            assertTrue(Float.isFinite(back[64 + d]) && Math.abs(back[64 + d] - token.getAtIndex(F, 64 + d)) < 1e-3,
                    "value " + back[64 + d]);
        }
    }

    /** Both paths of the fused kernel against dequantizing the whole cache and running the scalar fp32 attention. */
    @Test
    void compressedAttentionMatchesDequantizeThenReference() {
        SplittableRandom rnd = new SplittableRandom(17);
        int[][] shapes = { // batch, qLen, kvLen, capacity, heads, headDim
                {3, 1, 13, 17, 2, 64}, {2, 5, 37, 40, 3, 80}, {4, 1, 70, 71, 2, 128}, {2, 7, 7, 9, 1, 64},
                {3, 1, 21, 24, 4, 16}, {2, 3, 11, 11, 3, 20}};
        ScalarKernels reference = new ScalarKernels();
        try (QuantizedAttention kernel = new QuantizedAttention(2)) {
            for (int[] sh : shapes) {
                int batch = sh[0], qLen = sh[1], kvLen = sh[2], capacity = sh[3], heads = sh[4], headDim = sh[5];
                KvRowFormat f = KvRowFormat.of(heads, headDim);
                int hidden = heads * headDim;
                MemorySegment q = gaussian(rnd, (long) batch * qLen * hidden, 1 / Math.sqrt(headDim));
                MemorySegment kFp = gaussian(rnd, (long) batch * capacity * hidden, 1);
                MemorySegment vFp = gaussian(rnd, (long) batch * capacity * hidden, 1);
                MemorySegment kq = ARENA.allocate(batch * capacity * f.rowBytes());
                MemorySegment vq = ARENA.allocate(batch * capacity * f.rowBytes());
                // rows past kvLen hold random bytes: they must never reach the result
                for (long i = 0; i < kq.byteSize(); i++) {
                    kq.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt());
                    vq.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt());
                }
                MemorySegment kDeq = ARENA.allocate((long) batch * capacity * hidden * 4);
                MemorySegment vDeq = ARENA.allocate((long) batch * capacity * hidden * 4);
                MemorySegment valid = ARENA.allocate((long) batch * capacity * 4);
                float[] row = new float[hidden];
                for (int b = 0; b < batch; b++) {
                    int padding = b == 0 ? capacity : rnd.nextInt(kvLen / 2 + 1); // sequence 0 all padding
                    for (int j = 0; j < capacity; j++) {
                        boolean real = j >= padding && rnd.nextInt(5) != 0;
                        valid.setAtIndex(F, (long) b * capacity + j, real ? 1f : 0f);
                        long r = (long) b * capacity + j;
                        if (j < kvLen) {
                            f.quantize(kFp, r * hidden * 4, kq, r * f.rowBytes());
                            f.quantize(vFp, r * hidden * 4, vq, r * f.rowBytes());
                            f.dequantize(kq, r * f.rowBytes(), row);
                            MemorySegment.copy(row, 0, kDeq, F, r * hidden * 4, hidden);
                            f.dequantize(vq, r * f.rowBytes(), row);
                            MemorySegment.copy(row, 0, vDeq, F, r * hidden * 4, hidden);
                        }
                    }
                }
                long outBytes = (long) batch * qLen * hidden * 4;
                MemorySegment expected = ARENA.allocate(outBytes);
                reference.attention(q, kDeq, vDeq, valid, expected, batch, qLen, kvLen, capacity, heads, headDim);
                MemorySegment fused = ARENA.allocate(outBytes);
                kernel.attention(q, kq, vq, valid, fused, batch, qLen, kvLen, capacity, f);
                MemorySegment scalar = ARENA.allocate(outBytes);
                QuantizedAttention.attentionReference(q, kq, vq, valid, scalar, batch, qLen, kvLen, capacity, f);
                String what = java.util.Arrays.toString(sh) + (QuantizedAttention.vectorized(f) ? " vector" : " scalar");
                assertClose(expected, fused, what);
                assertClose(expected, scalar, what + " (scalar twin)");
                for (int i = 0; i < qLen * hidden; i++) {
                    assertEquals(0f, fused.getAtIndex(F, i), "sequence 0 sees no key: zero output");
                }
            }
        }
    }

    /** The fused sequence-level result does not depend on the batch it was computed in. */
    @Test
    void aSequenceGetsTheSameBitsAloneAndInABatch() {
        SplittableRandom rnd = new SplittableRandom(3);
        int batch = 3, kvLen = 19, capacity = 20, heads = 2, headDim = 64;
        KvRowFormat f = KvRowFormat.of(heads, headDim);
        int hidden = heads * headDim;
        MemorySegment q = gaussian(rnd, (long) batch * hidden, 0.125);
        MemorySegment kv = gaussian(rnd, (long) batch * capacity * hidden, 1);
        MemorySegment k = ARENA.allocate(batch * capacity * f.rowBytes());
        MemorySegment v = ARENA.allocate(batch * capacity * f.rowBytes());
        MemorySegment valid = ARENA.allocate((long) batch * capacity * 4);
        for (long r = 0; r < (long) batch * capacity; r++) {
            f.quantize(kv, r * hidden * 4, k, r * f.rowBytes());
            f.quantize(kv, r * hidden * 4, v, r * f.rowBytes());
            valid.setAtIndex(F, r, 1f);
        }
        try (QuantizedAttention kernel = new QuantizedAttention(2)) {
            MemorySegment all = ARENA.allocate((long) batch * hidden * 4);
            kernel.attention(q, k, v, valid, all, batch, 1, kvLen, capacity, f);
            long seq = capacity * f.rowBytes();
            MemorySegment one = ARENA.allocate((long) hidden * 4);
            kernel.attention(q.asSlice(2L * hidden * 4, hidden * 4L), k.asSlice(2 * seq, seq), v.asSlice(2 * seq, seq),
                    valid.asSlice(2L * capacity * 4, capacity * 4L), one, 1, 1, kvLen, capacity, f);
            assertArrayEquals(all.asSlice(2L * hidden * 4, hidden * 4L).toArray(F), one.toArray(F));
        }
    }

    private static void assertClose(MemorySegment expected, MemorySegment got, String what) {
        float[] e = expected.toArray(F);
        float[] g = got.toArray(F);
        for (int i = 0; i < e.length; i++) {
            assertTrue(Float.isFinite(g[i]), what + ": element " + i + " is " + g[i]);
            assertEquals(e[i], g[i], 2e-5f + 2e-4f * Math.abs(e[i]), what + ": element " + i);
        }
    }
}
