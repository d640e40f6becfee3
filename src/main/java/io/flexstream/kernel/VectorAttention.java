package io.flexstream.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * One (sequence, head) pair of {@link CpuKernels#attention}: all its queries against the cache. The engine runs one
 * such task per pair in parallel; a task touches only its own output rows, and its arithmetic depends only on its own
 * inputs, so a sequence gets the same bits alone or in a batch, on any thread.
 *
 * <p>Per query: scores are vector dot products over headDim (fixed lane order, {@link LaneSum}, then a scalar tail);
 * softmax in fp32 with the maximum subtracted, exponentials summed in key order; the output is the probability
 * weighted sum of V rows accumulated in key order, divided by the sum once at the end.
 */
final class VectorAttention {

    private static final VectorSpecies<Float> S = LaneSum.SPECIES;
    private static final int LANES = LaneSum.LANES;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    private VectorAttention() {
    }

    /** Geometry shared by every task of one call (sizes in elements). */
    record Shape(int batch, int qLen, int kvLen, int capacity, int heads, int headDim) {
        int hidden() {
            return heads * headDim;
        }
    }

    static void sequenceHead(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment keyValid,
                             MemorySegment out, Shape shape, int b, int h) {
        int hidden = shape.hidden();
        int headDim = shape.headDim();
        int mainDim = headDim - headDim % LANES;
        float[] weights = new float[shape.kvLen()];
        int[] visible = new int[shape.kvLen()];
        float[] lanes = new float[LANES];
        long cacheRow0 = (long) b * shape.capacity(); // cache row of position 0 of this sequence
        for (int t = 0; t < shape.qLen(); t++) {
            long qBytes = 4L * (((long) b * shape.qLen() + t) * hidden + (long) h * headDim);
            int position = shape.kvLen() - shape.qLen() + t; // own cache slot: sees keys 0..position
            int count = 0;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j <= position; j++) {
                if (keyValid.getAtIndex(F, cacheRow0 + j) == 0f) {
                    continue;
                }
                long kBytes = 4L * ((cacheRow0 + j) * hidden + (long) h * headDim);
                FloatVector acc = FloatVector.zero(S);
                for (int d = 0; d < mainDim; d += LANES) {
                    acc = load(q, qBytes + 4L * d).fma(load(kCache, kBytes + 4L * d), acc);
                }
                acc.intoArray(lanes, 0);
                float score = LaneSum.fold(lanes, 0);
                for (int d = mainDim; d < headDim; d++) {
                    score = Math.fma(q.get(F, qBytes + 4L * d), kCache.get(F, kBytes + 4L * d), score);
                }
                visible[count] = j;
                weights[count++] = score;
                max = Math.max(max, score);
            }
            if (count == 0) {
                // A pad query sees nothing; zeros rather than NaN keep later layers finite.
                out.asSlice(qBytes, 4L * headDim).fill((byte) 0);
                continue;
            }
            float sum = 0f;
            for (int c = 0; c < count; c++) {
                weights[c] = (float) Math.exp(weights[c] - max);
                sum += weights[c];
            }
            for (int d = 0; d < mainDim; d += LANES) {
                FloatVector acc = FloatVector.zero(S);
                for (int c = 0; c < count; c++) {
                    long vBytes = 4L * ((cacheRow0 + visible[c]) * hidden + (long) h * headDim + d);
                    acc = FloatVector.broadcast(S, weights[c]).fma(load(vCache, vBytes), acc);
                }
                acc.div(sum).intoMemorySegment(out, qBytes + 4L * d, NATIVE);
            }
            for (int d = mainDim; d < headDim; d++) {
                float acc = 0f;
                for (int c = 0; c < count; c++) {
                    long vIndex = (cacheRow0 + visible[c]) * hidden + (long) h * headDim + d;
                    acc = Math.fma(weights[c], vCache.getAtIndex(F, vIndex), acc);
                }
                out.set(F, qBytes + 4L * d, acc / sum);
            }
        }
    }

    private static FloatVector load(MemorySegment s, long byteOffset) {
        return FloatVector.fromMemorySegment(S, s, byteOffset, NATIVE);
    }
}
