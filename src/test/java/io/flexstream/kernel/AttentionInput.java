package io.flexstream.kernel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * Inputs of one {@link Kernels#attention} call as heap arrays, in the interface's layouts, so tests can run the same
 * call on several backends and cut single sequences out of a batch.
 */
record AttentionInput(float[] q, float[] k, float[] v, float[] keyValid, int batch, int qLen, int kvLen, int capacity,
                      int heads, int headDim) {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    /**
     * Random inputs with left padding of random length, random holes, and sequence 0 entirely masked (every query
     * sees no key). Cache slots beyond kvLen hold garbage that must never be read into the result.
     */
    static AttentionInput random(SplittableRandom random, int batch, int qLen, int kvLen, int capacity, int heads,
                                 int headDim) {
        int hidden = heads * headDim;
        float[] q = CpuKernelsTest.randomArray(random, batch * qLen * hidden);
        float scale = (float) (1 / Math.sqrt(headDim));
        for (int i = 0; i < q.length; i++) {
            q[i] *= scale;
        }
        float[] k = CpuKernelsTest.randomArray(random, batch * capacity * hidden);
        float[] v = CpuKernelsTest.randomArray(random, batch * capacity * hidden);
        float[] valid = new float[batch * capacity];
        for (int b = 0; b < batch; b++) {
            int padding = b == 0 ? capacity : random.nextInt(kvLen / 2 + 1);
            for (int j = 0; j < capacity; j++) {
                valid[b * capacity + j] = j >= padding && random.nextInt(5) != 0 ? 1f : 0f;
            }
        }
        return new AttentionInput(q, k, v, valid, batch, qLen, kvLen, capacity, heads, headDim);
    }

    /** True when query t of sequence b sees no valid key. */
    boolean seesNoKey(int b, int t) {
        for (int j = 0; j <= kvLen - qLen + t; j++) {
            if (keyValid[b * capacity + j] != 0f) {
                return false;
            }
        }
        return true;
    }

    /** Sequence b alone, as a batch of one. */
    AttentionInput sequence(int b) {
        int hidden = heads * headDim;
        return new AttentionInput(slice(q, b, qLen * hidden), slice(k, b, capacity * hidden),
                slice(v, b, capacity * hidden), slice(keyValid, b, capacity), 1, qLen, kvLen, capacity, heads,
                headDim);
    }

    private static float[] slice(float[] a, int index, int length) {
        float[] s = new float[length];
        System.arraycopy(a, index * length, s, 0, length);
        return s;
    }

    float[] run(Kernels kernels, Arena arena) {
        MemorySegment out = arena.allocate(4L * q.length, 64);
        out.fill((byte) 0x7f); // garbage, so an unwritten output shows
        kernels.attention(segment(arena, q), segment(arena, k), segment(arena, v), segment(arena, keyValid), out,
                batch, qLen, kvLen, capacity, heads, headDim);
        return out.toArray(F);
    }

    private static MemorySegment segment(Arena arena, float[] values) {
        MemorySegment s = arena.allocate(4L * values.length, 64);
        MemorySegment.copy(values, 0, s, F, 0, values.length);
        return s;
    }
}
