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
 * vectors along headDim), divided by the sum once at the end. Whole groups of eight keys run together, with the
 * same bits per score and per chain: their scores as eight fma chains folded at once by {@link LaneSum#foldEight}
 * (8- and 16-lane vectors; one chain per key stalled on fma latency, and its fold on stores and scalar adds, about
 * 17% of the generate benchmark between them on AVX2), and their values as eight fmas per register-held chunk of
 * the output. Masked keys and keys after the query's own position
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
            int j = 0;
            if (LaneSum.FOLDS_EIGHT) {
                for (; j + 8 <= position + 1; j += 8) {
                    scoreEight(query, kCache, seqBytes + j * rowBytes, rowBytes, heads, headDim, mainDim, scores,
                            kvLen, j);
                    for (int i = j; i < j + 8; i++) {
                        if (valid[i] != 0f) {
                            any = true;
                            for (int h = 0; h < heads; h++) {
                                max[h] = Math.max(max[h], scores[h * kvLen + i]);
                            }
                        }
                    }
                }
            }
            for (; j <= position; j++) {
                if (valid[j] == 0f) {
                    continue; // never read: masked keys are skipped below too
                }
                any = true;
                long kRow = seqBytes + j * rowBytes;
                for (int h = 0; h < heads; h++) {
                    float score = scoreOne(query, kCache, kRow, h * headDim, headDim, mainDim, lanes);
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
            // Eight valid keys at a time where they come in a row, otherwise one: both extend every chain in key
            // order, so where the groups fall does not change a bit.
            for (j = 0; j <= position; ) {
                if (j + 8 <= position + 1 && allValid(valid, j, 8)) {
                    addEightValues(scores, vCache, seqBytes + j * rowBytes, rowBytes, heads, headDim, mainDim, kvLen,
                            j, acc);
                    j += 8;
                } else {
                    if (valid[j] != 0f) {
                        addValue(scores, vCache, seqBytes + j * rowBytes, heads, headDim, mainDim, kvLen, j, acc);
                    }
                    j++;
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

    /**
     * The score of one key for head h (query dims from q0): a vector fma chain over the whole LANES-wide chunks in
     * increasing d, folded by {@link LaneSum#fold}, then the leftover dims as scalar fmas in order.
     */
    private static float scoreOne(float[] query, MemorySegment kCache, long kRow, int q0, int headDim, int mainDim,
                                  float[] lanes) {
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
        return score;
    }

    /**
     * The scores of keys j..j+7 (cache rows from {@code kRow}) for every head, into {@code scores[h * kvLen + j..]}:
     * the same bits as {@link #scoreOne} per key, masked keys included (their scores are never read). Eight
     * independent fma chains per head hide the fma latency that one chain per key waits on, and
     * {@link LaneSum#foldEight} folds them together; the accumulators are in bit-reversed key order for it.
     */
    private static void scoreEight(float[] query, MemorySegment kCache, long kRow, long rowBytes, int heads,
                                   int headDim, int mainDim, float[] scores, int kvLen, int j) {
        for (int h = 0; h < heads; h++) {
            int q0 = h * headDim;
            long k0 = kRow + 4L * q0;
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            for (int d = 0; d < mainDim; d += LANES) {
                FloatVector qv = FloatVector.fromArray(S, query, q0 + d);
                long o = k0 + 4L * d;
                a0 = qv.fma(FloatVector.fromMemorySegment(S, kCache, o, NATIVE), a0);
                a4 = qv.fma(FloatVector.fromMemorySegment(S, kCache, o + rowBytes, NATIVE), a4);
                a2 = qv.fma(FloatVector.fromMemorySegment(S, kCache, o + 2 * rowBytes, NATIVE), a2);
                a6 = qv.fma(FloatVector.fromMemorySegment(S, kCache, o + 3 * rowBytes, NATIVE), a6);
                a1 = qv.fma(FloatVector.fromMemorySegment(S, kCache, o + 4 * rowBytes, NATIVE), a1);
                a5 = qv.fma(FloatVector.fromMemorySegment(S, kCache, o + 5 * rowBytes, NATIVE), a5);
                a3 = qv.fma(FloatVector.fromMemorySegment(S, kCache, o + 6 * rowBytes, NATIVE), a3);
                a7 = qv.fma(FloatVector.fromMemorySegment(S, kCache, o + 7 * rowBytes, NATIVE), a7);
            }
            int s0 = h * kvLen + j;
            LaneSum.foldEight(a0, a1, a2, a3, a4, a5, a6, a7).intoArray(scores, s0);
            for (int i = 0; i < 8; i++) {
                long kBytes = k0 + i * rowBytes;
                float score = scores[s0 + i];
                for (int d = mainDim; d < headDim; d++) {
                    score = Math.fma(query[q0 + d], kCache.get(F, kBytes + 4L * d), score);
                }
                scores[s0 + i] = score;
            }
        }
    }

    private static boolean allValid(float[] valid, int from, int count) {
        for (int i = from; i < from + count; i++) {
            if (valid[i] == 0f) {
                return false;
            }
        }
        return true;
    }

    /** acc[h][d] = fma(p[h][j], v[j][h][d], acc[h][d]) for every head and dim: key j's step of every chain. */
    private static void addValue(float[] scores, MemorySegment vCache, long vRow, int heads, int headDim,
                                 int mainDim, int kvLen, int j, float[] acc) {
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

    /**
     * Keys j..j+7, all valid, in one pass: per chunk of acc, the eight fmas in key order on a register, so acc is
     * loaded and stored once per eight keys instead of once per key. Each element's chain is the same as eight
     * {@link #addValue} calls.
     */
    private static void addEightValues(float[] scores, MemorySegment vCache, long vRow, long rowBytes, int heads,
                                       int headDim, int mainDim, int kvLen, int j, float[] acc) {
        for (int h = 0; h < heads; h++) {
            int q0 = h * headDim;
            int s0 = h * kvLen + j;
            FloatVector p0 = FloatVector.broadcast(S, scores[s0]), p1 = FloatVector.broadcast(S, scores[s0 + 1]);
            FloatVector p2 = FloatVector.broadcast(S, scores[s0 + 2]), p3 = FloatVector.broadcast(S, scores[s0 + 3]);
            FloatVector p4 = FloatVector.broadcast(S, scores[s0 + 4]), p5 = FloatVector.broadcast(S, scores[s0 + 5]);
            FloatVector p6 = FloatVector.broadcast(S, scores[s0 + 6]), p7 = FloatVector.broadcast(S, scores[s0 + 7]);
            long v0 = vRow + 4L * q0;
            for (int d = 0; d < mainDim; d += LANES) {
                long o = v0 + 4L * d;
                FloatVector a = FloatVector.fromArray(S, acc, q0 + d);
                a = p0.fma(FloatVector.fromMemorySegment(S, vCache, o, NATIVE), a);
                a = p1.fma(FloatVector.fromMemorySegment(S, vCache, o + rowBytes, NATIVE), a);
                a = p2.fma(FloatVector.fromMemorySegment(S, vCache, o + 2 * rowBytes, NATIVE), a);
                a = p3.fma(FloatVector.fromMemorySegment(S, vCache, o + 3 * rowBytes, NATIVE), a);
                a = p4.fma(FloatVector.fromMemorySegment(S, vCache, o + 4 * rowBytes, NATIVE), a);
                a = p5.fma(FloatVector.fromMemorySegment(S, vCache, o + 5 * rowBytes, NATIVE), a);
                a = p6.fma(FloatVector.fromMemorySegment(S, vCache, o + 6 * rowBytes, NATIVE), a);
                a = p7.fma(FloatVector.fromMemorySegment(S, vCache, o + 7 * rowBytes, NATIVE), a);
                a.intoArray(acc, q0 + d);
            }
            for (int d = mainDim; d < headDim; d++) {
                float a = acc[q0 + d];
                for (int i = 0; i < 8; i++) {
                    a = Math.fma(scores[s0 + i], vCache.get(F, v0 + i * rowBytes + 4L * d), a);
                }
                acc[q0 + d] = a;
            }
        }
    }
}
