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

    /**
     * Per-thread scratch, grown on demand: a fresh ~80 KB of arrays per (sequence, head) task cost more to allocate
     * and zero than decode's one query spends computing with them (batch 32 x 12 heads x 12 layers tasks a step).
     */
    private static final class Scratch {
        float[] keysT = new float[0];
        float[] values = new float[0];
        float[] valid = new float[0];
        float[] scores = new float[0];
        float[] query = new float[0];
        float[] acc = new float[0];
        float[] row = new float[0];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    static void sequenceHead(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment keyValid,
                             MemorySegment out, Shape shape, int b, int h) {
        int hidden = shape.hidden();
        int headDim = shape.headDim();
        int kvLen = shape.kvLen();
        int groups = (kvLen + LANES - 1) / LANES; // keys in groups of LANES; slots past kvLen are zero
        int keys = groups * LANES;
        long cacheRow0 = (long) b * shape.capacity(); // cache row of position 0 of this sequence
        Scratch scratch = SCRATCH.get();
        if (scratch.keysT.length < headDim * keys) {
            scratch.keysT = new float[headDim * keys];
        }
        if (scratch.values.length < kvLen * headDim) {
            scratch.values = new float[kvLen * headDim];
        }
        if (scratch.valid.length < kvLen) {
            scratch.valid = new float[kvLen];
        }
        if (scratch.scores.length < keys) {
            scratch.scores = new float[keys];
        }
        if (scratch.query.length < headDim) {
            scratch.query = new float[headDim];
            scratch.acc = new float[headDim];
            scratch.row = new float[headDim];
        }
        float[] keysT = scratch.keysT, values = scratch.values, valid = scratch.valid, scores = scratch.scores;
        float[] query = scratch.query, acc = scratch.acc, row = scratch.row;
        // This head's keys transposed per group of LANES keys (keysT[g][d][t] = key g*LANES+t, dim d) and values as
        // rows (values[j][d]), copied once for all queries: heap arrays let C2 drop the bounds checks that segment
        // loads keep. Group-major rather than one [d][keys] matrix: a key's 64 scattered stores then land in one
        // 2 KB block that stays in L1, where a [d][keys] matrix put each in a different line of a ~40 KB array.
        for (int j = 0; j < kvLen; j++) {
            long offset = 4L * ((cacheRow0 + j) * hidden + (long) h * headDim);
            MemorySegment.copy(kCache, F, offset, row, 0, headDim);
            int at = (j / LANES) * headDim * LANES + j % LANES;
            for (int d = 0; d < headDim; d++) {
                keysT[at + d * LANES] = row[d];
            }
            MemorySegment.copy(vCache, F, offset, values, j * headDim, headDim);
        }
        for (int j = kvLen; j < keys; j++) { // pad slots of the last group: scores computed there are never read
            int at = (j / LANES) * headDim * LANES + j % LANES;
            for (int d = 0; d < headDim; d++) {
                keysT[at + d * LANES] = 0f;
            }
        }
        MemorySegment.copy(keyValid, F, 4L * cacheRow0, valid, 0, kvLen);
        int mainDim = headDim - headDim % LANES;
        for (int t = 0; t < shape.qLen(); t++) {
            long qBytes = 4L * (((long) b * shape.qLen() + t) * hidden + (long) h * headDim);
            int position = kvLen - shape.qLen() + t; // own cache slot: sees keys 0..position
            MemorySegment.copy(q, F, qBytes, query, 0, headDim);
            // Scores LANES keys at a time: each lane is the fma chain over d in order, so no horizontal sums are
            // needed. Two groups per pass give two independent chains, so the fma latency is not exposed.
            int visibleGroups = position / LANES + 1;
            int g = 0;
            for (; g + 1 < visibleGroups; g += 2) {
                int base0 = g * headDim * LANES, base1 = base0 + headDim * LANES;
                FloatVector acc0 = FloatVector.zero(S), acc1 = acc0;
                for (int d = 0; d < headDim; d++) {
                    FloatVector qd = FloatVector.broadcast(S, query[d]);
                    acc0 = qd.fma(FloatVector.fromArray(S, keysT, base0 + d * LANES), acc0);
                    acc1 = qd.fma(FloatVector.fromArray(S, keysT, base1 + d * LANES), acc1);
                }
                acc0.intoArray(scores, g * LANES);
                acc1.intoArray(scores, g * LANES + LANES);
            }
            for (; g < visibleGroups; g++) {
                int base0 = g * headDim * LANES;
                FloatVector acc0 = FloatVector.zero(S);
                for (int d = 0; d < headDim; d++) {
                    acc0 = FloatVector.broadcast(S, query[d]).fma(FloatVector.fromArray(S, keysT, base0 + d * LANES),
                            acc0);
                }
                acc0.intoArray(scores, g * LANES);
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
            // Output: per element d the chain acc = fma(p_j, v[j][d], acc) over visible valid keys in key order.
            // Keys outer, dims inner, so the headDim/LANES chains advance side by side instead of one at a time.
            java.util.Arrays.fill(acc, 0, headDim, 0f);
            for (int j = 0; j <= position; j++) {
                if (valid[j] != 0f) {
                    FloatVector pj = FloatVector.broadcast(S, scores[j]);
                    int v0 = j * headDim;
                    for (int d = 0; d < mainDim; d += LANES) {
                        pj.fma(FloatVector.fromArray(S, values, v0 + d), FloatVector.fromArray(S, acc, d))
                                .intoArray(acc, d);
                    }
                    for (int d = mainDim; d < headDim; d++) {
                        acc[d] = Math.fma(scores[j], values[v0 + d], acc[d]);
                    }
                }
            }
            for (int d = 0; d < mainDim; d += LANES) {
                FloatVector.fromArray(S, acc, d).div(sum).intoMemorySegment(out, qBytes + 4L * d, NATIVE);
            }
            for (int d = mainDim; d < headDim; d++) {
                out.set(F, qBytes + 4L * d, acc[d] / sum);
            }
        }
    }
}
