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
 * <p>Per query: each score is one fma chain over headDim in order (computed for LANES keys at once from a transposed
 * copy of the head's keys, so no horizontal sums); softmax in fp32 with the maximum over visible keys subtracted,
 * exponentials summed in key order; the output is the probability-weighted sum of V rows accumulated in key order
 * (vectors along headDim), divided by the sum once at the end. Masked keys and keys after the query's own position
 * never enter the max, the sum or the output.
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
        int kvLen = shape.kvLen();
        int keys = (kvLen + LANES - 1) / LANES * LANES; // key slots rounded up to whole vectors; pad keys are zero
        long cacheRow0 = (long) b * shape.capacity(); // cache row of position 0 of this sequence
        // This head's keys transposed (keysT[d][j]) and values as rows (values[j][d]), copied once for all queries:
        // heap arrays let C2 drop the bounds checks that segment loads keep.
        float[] keysT = new float[headDim * keys];
        float[] values = new float[kvLen * headDim];
        float[] row = new float[headDim];
        for (int j = 0; j < kvLen; j++) {
            long offset = 4L * ((cacheRow0 + j) * hidden + (long) h * headDim);
            MemorySegment.copy(kCache, F, offset, row, 0, headDim);
            for (int d = 0; d < headDim; d++) {
                keysT[d * keys + j] = row[d];
            }
            MemorySegment.copy(vCache, F, offset, values, j * headDim, headDim);
        }
        float[] valid = new float[kvLen];
        MemorySegment.copy(keyValid, F, 4L * cacheRow0, valid, 0, kvLen);
        float[] query = new float[headDim];
        float[] scores = new float[keys];
        int mainDim = headDim - headDim % LANES;
        for (int t = 0; t < shape.qLen(); t++) {
            long qBytes = 4L * (((long) b * shape.qLen() + t) * hidden + (long) h * headDim);
            int position = kvLen - shape.qLen() + t; // own cache slot: sees keys 0..position
            MemorySegment.copy(q, F, qBytes, query, 0, headDim);
            // Scores LANES keys at a time: each is the fma chain over d in order, so no horizontal sums are needed.
            for (int j0 = 0; j0 <= position; j0 += LANES) {
                FloatVector acc = FloatVector.zero(S);
                for (int d = 0; d < headDim; d++) {
                    acc = FloatVector.broadcast(S, query[d]).fma(FloatVector.fromArray(S, keysT, d * keys + j0), acc);
                }
                acc.intoArray(scores, j0);
            }
            float max = Float.NEGATIVE_INFINITY;
            boolean any = false;
            for (int j = 0; j <= position; j++) {
                if (valid[j] != 0f) {
                    max = Math.max(max, scores[j]);
                    any = true;
                }
            }
            if (!any) {
                // A pad query sees nothing; zeros rather than NaN keep later layers finite.
                out.asSlice(qBytes, 4L * headDim).fill((byte) 0);
                continue;
            }
            float sum = 0f;
            for (int j = 0; j <= position; j++) {
                scores[j] = valid[j] != 0f ? (float) Math.exp(scores[j] - max) : 0f;
                sum += scores[j]; // masked keys add +0, which leaves the sum's bits unchanged
            }
            for (int d = 0; d < mainDim; d += LANES) {
                FloatVector acc = FloatVector.zero(S);
                for (int j = 0; j <= position; j++) {
                    if (valid[j] != 0f) {
                        acc = FloatVector.broadcast(S, scores[j]).fma(FloatVector.fromArray(S, values, j * headDim + d),
                                acc);
                    }
                }
                acc.div(sum).intoMemorySegment(out, qBytes + 4L * d, NATIVE);
            }
            for (int d = mainDim; d < headDim; d++) {
                float acc = 0f;
                for (int j = 0; j <= position; j++) {
                    if (valid[j] != 0f) {
                        acc = Math.fma(scores[j], values[j * headDim + d], acc);
                    }
                }
                out.set(F, qBytes + 4L * d, acc / sum);
            }
        }
    }
}
