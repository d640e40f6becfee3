package io.flexstream.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * One sequence of {@link CpuKernels#attention}: all its queries, every head, against the cache. The engine runs one
 * such task per sequence in parallel; a task touches only its own output rows, and its arithmetic depends only on its
 * own inputs, so a sequence gets the same bits alone or in a batch, on any thread.
 *
 * <p>Per query: each score is a dot product over headDim in one fixed order: a vector fma chain over the whole
 * LANES-wide chunks of d in increasing order, the lanes folded by {@link LaneSum#fold}, then the leftover dims as
 * scalar fmas in order. Softmax in fp32 with the maximum over visible keys subtracted, exponentials summed in key
 * order; the output is the probability-weighted sum of V rows accumulated in key order (per element one fma chain,
 * vectors along headDim), divided by the sum once at the end. Masked keys and keys after the query's own position
 * never enter the max, the sum or the output. None of this depends on qLen, kvLen, the capacity or where the
 * sequence sits in the batch.
 *
 * <p>K and V are read in place from the cache with vector loads along headDim. A task is a whole sequence (all heads),
 * and its loops run key-major, every head of cache row j before row j+1: a sequence's rows are one contiguous block
 * of the cache, so the reads are a sequential stream the hardware prefetcher keeps ahead of. One task per (sequence,
 * head) read 256 bytes every 3 KB instead, and in decode (one query per task, cache not in L2) nearly every row was
 * a memory-latency miss. An earlier version also copied each task's keys into a transposed heap array so that scores
 * needed no horizontal sum; in decode that copy cost more than the arithmetic.
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

    /** Per-thread scratch, grown on demand, so that the (many, small) decode tasks allocate nothing. */
    private static final class Scratch {
        float[] valid = new float[0];
        float[] scores = new float[0];
        float[] query = new float[0];
        float[] acc = new float[0];
        float[] max = new float[0];
        float[] sum = new float[0];
        final float[] lanes = new float[LANES];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** All queries of sequence b, every head. */
    static void sequence(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment keyValid,
                         MemorySegment out, Shape shape, int b) {
        int hidden = shape.hidden();
        int heads = shape.heads();
        int headDim = shape.headDim();
        int kvLen = shape.kvLen();
        long cacheRow0 = (long) b * shape.capacity(); // cache row of position 0 of this sequence
        Scratch scratch = SCRATCH.get();
        if (scratch.valid.length < kvLen || scratch.scores.length < heads * kvLen) {
            scratch.valid = new float[kvLen];
            scratch.scores = new float[heads * kvLen];
        }
        if (scratch.query.length < hidden || scratch.max.length < heads) {
            scratch.query = new float[hidden];
            scratch.acc = new float[hidden];
            scratch.max = new float[heads];
            scratch.sum = new float[heads];
        }
        float[] valid = scratch.valid, scores = scratch.scores, query = scratch.query, acc = scratch.acc;
        float[] max = scratch.max, sum = scratch.sum, lanes = scratch.lanes;
        MemorySegment.copy(keyValid, F, 4L * cacheRow0, valid, 0, kvLen);
        int mainDim = headDim - headDim % LANES;
        long rowBytes = 4L * hidden;
        long seqBytes = 4L * cacheRow0 * hidden; // cache row 0 of this sequence
        for (int t = 0; t < shape.qLen(); t++) {
            long qBytes = 4L * ((long) b * shape.qLen() + t) * hidden;
            int position = kvLen - shape.qLen() + t; // own cache slot: sees keys 0..position
            MemorySegment.copy(q, F, qBytes, query, 0, hidden);
            java.util.Arrays.fill(max, 0, heads, Float.NEGATIVE_INFINITY);
            boolean any = false;
            for (int j = 0; j <= position; j++) {
                if (valid[j] == 0f) {
                    continue; // never read: masked keys are skipped below too
                }
                any = true;
                long kRow = seqBytes + j * rowBytes;
                for (int h = 0; h < heads; h++) {
                    int q0 = h * headDim;
                    long kBytes = kRow + 4L * q0;
                    FloatVector dot = FloatVector.zero(S);
                    for (int d = 0; d < mainDim; d += LANES) {
                        dot = FloatVector.fromArray(S, query, q0 + d)
                                .fma(FloatVector.fromMemorySegment(S, kCache, kBytes + 4L * d, NATIVE), dot);
                    }
                    dot.intoArray(lanes, 0);
                    float score = LaneSum.fold(lanes, 0);
                    for (int d = mainDim; d < headDim; d++) {
                        score = Math.fma(query[q0 + d], kCache.get(F, kBytes + 4L * d), score);
                    }
                    scores[h * kvLen + j] = score;
                    max[h] = Math.max(max[h], score);
                }
            }
            if (!any) {
                // A pad query sees nothing; zeros rather than NaN keep later layers finite.
                out.asSlice(qBytes, rowBytes).fill((byte) 0);
                continue;
            }
            MaskedSoftmax.exponentiate(scores, valid, max, sum, heads, kvLen, position);
            // Output: per element the chain acc = fma(p_j, v[j][d], acc) over visible valid keys in key order.
            // Keys outer, dims inner, so the hidden/LANES chains advance side by side instead of one at a time.
            java.util.Arrays.fill(acc, 0, hidden, 0f);
            for (int j = 0; j <= position; j++) {
                if (valid[j] == 0f) {
                    continue;
                }
                long vRow = seqBytes + j * rowBytes;
                for (int h = 0; h < heads; h++) {
                    int q0 = h * headDim;
                    float p = scores[h * kvLen + j];
                    FloatVector pj = FloatVector.broadcast(S, p);
                    for (int d = 0; d < mainDim; d += LANES) {
                        pj.fma(FloatVector.fromMemorySegment(S, vCache, vRow + 4L * (q0 + d), NATIVE),
                                FloatVector.fromArray(S, acc, q0 + d)).intoArray(acc, q0 + d);
                    }
                    for (int d = mainDim; d < headDim; d++) {
                        acc[q0 + d] = Math.fma(p, vCache.get(F, vRow + 4L * (q0 + d)), acc[q0 + d]);
                    }
                }
            }
            for (int h = 0; h < heads; h++) {
                int q0 = h * headDim;
                float total = sum[h];
                for (int d = 0; d < mainDim; d += LANES) {
                    FloatVector.fromArray(S, acc, q0 + d).div(total)
                            .intoMemorySegment(out, qBytes + 4L * (q0 + d), NATIVE);
                }
                for (int d = mainDim; d < headDim; d++) {
                    out.set(F, qBytes + 4L * (q0 + d), acc[q0 + d] / total);
                }
            }
        }
    }
}
