package io.flexstream.quant;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Per-token KV compression: FlexGen's numerics, append-only, and the attention reads against their scalar twins. */
class QuantizedKvBlockTest {

    private static final Arena ARENA = Arena.ofShared();

    @AfterAll
    static void close() {
        ARENA.close();
    }

    private static MemorySegment token(Random rnd, int values) {
        MemorySegment s = ARENA.allocate((long) values * 4);
        for (int i = 0; i < values; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextGaussian());
        }
        return s;
    }

    @Test
    void eachTokenIsQuantizedAlongTheHeadDimensionAndOlderTokensStayUntouched() {
        Random rnd = new Random(3);
        int heads = 3;
        for (int headDim : new int[]{64, 80}) {
            QuantizedKvBlock kv = new QuantizedKvBlock(5, heads, headDim, 64, ARENA);
            float[][] expected = new float[5][];
            byte[] firstBytes = null;
            for (int pos = 0; pos < 5; pos++) {
                MemorySegment t = token(rnd, heads * headDim);
                kv.append(t, 0);
                float[] data = t.toArray(ValueLayout.JAVA_FLOAT);
                // FlexGen's cache grouping: (heads, headDim) grouped along headDim, fp16 metadata
                expected[pos] = GroupQuantizer.dequantize(
                        GroupQuantizer.flexGen().quantize(data, new int[]{heads, headDim}, 1));
                if (pos == 0) {
                    firstBytes = kv.packed().asSlice(0, kv.packed().byteSize() / 5).toArray(ValueLayout.JAVA_BYTE);
                }
            }
            float[] back = new float[heads * headDim];
            for (int pos = 0; pos < 5; pos++) {
                kv.dequantizeToken(pos, back);
                assertArrayEquals(expected[pos], back, "headDim " + headDim + " pos " + pos);
            }
            assertArrayEquals(firstBytes,
                    kv.packed().asSlice(0, kv.packed().byteSize() / 5).toArray(ValueLayout.JAVA_BYTE));
            assertThrows(IllegalStateException.class, () -> kv.append(token(rnd, heads * headDim), 0));
        }
    }

    @Test
    void cacheTakesAtMost029OfFp16WithHeadDim64() {
        QuantizedKvBlock kv = new QuantizedKvBlock(128, 32, 64, 64, ARENA);
        assertEquals(128L * 32 * 36, kv.bytes());
        assertTrue(kv.bytes() <= 0.29 * kv.fp16Bytes());
    }

    @Test
    void vectorReadsMatchScalarTwins() {
        Random rnd = new Random(9);
        for (int headDim : new int[]{64, 80, 128}) {
            int heads = 2;
            int len = 37;
            QuantizedKvBlock k = new QuantizedKvBlock(len, heads, headDim, 64, ARENA);
            QuantizedKvBlock v = new QuantizedKvBlock(len, heads, headDim, 64, ARENA);
            for (int pos = 0; pos < len; pos++) {
                k.append(token(rnd, heads * headDim), 0);
                v.append(token(rnd, heads * headDim), 0);
            }
            float[] q = new float[heads * headDim + 3];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) rnd.nextGaussian() / 8;
            }
            for (int head = 0; head < heads; head++) {
                int from = 2;
                int to = len - 1;
                float[] ref = new float[to - from];
                float[] got = new float[to - from];
                k.scoresReference(q, 3 + head * headDim, head, from, to, ref, 0);
                k.scores(q, 3 + head * headDim, head, from, to, got, 0);
                assertArrayEquals(ref, got, 1e-5f * headDim, "scores headDim " + headDim);
                float[] p = new float[to - from];
                for (int i = 0; i < p.length; i++) {
                    p[i] = rnd.nextFloat() / p.length;
                }
                float[] sumRef = new float[headDim + 1];
                float[] sumGot = new float[headDim + 1];
                v.weightedSumReference(p, 0, head, from, to, sumRef, 1);
                v.weightedSum(p, 0, head, from, to, sumGot, 1);
                assertArrayEquals(sumRef, sumGot, 1e-5f, "weighted sum headDim " + headDim);
            }
        }
    }
}
