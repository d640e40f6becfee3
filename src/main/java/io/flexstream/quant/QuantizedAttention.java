package io.flexstream.quant;

import io.flexstream.kernel.MaskedSoftmax;
import io.flexstream.kernel.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Causal multi-head attention against a 4-bit KV cache, read compressed: the contract of
 * {@code io.flexstream.kernel.Kernels#attention} except that {@code kCache} and {@code vCache} hold
 * [batch][capacity][{@link KvRowFormat#rowBytes()}] compressed rows instead of fp32 rows. No fp32 copy of the cache is
 * made: FlexGen dequantizes the whole cache into a workspace before attention (FLEXGEN.md 4.4); here each group's
 * codes are unpacked and dequantized in vector registers as the dot products and the weighted sum consume them.
 *
 * <p>Per sequence, key-major as {@code VectorAttention}: for each visible key row, for each head, the score is an FMA
 * chain over the head's groups (per group: one int-vector load per 8 x L codes, {@code w = q.fma(1 / scale, min)},
 * {@code acc = query.fma(w, acc)}; the query is zero-padded to whole groups so padding contributes 0), its lanes
 * summed in index order. Softmax in fp32 with the maximum over visible keys subtracted, exponentials summed in key
 * order; the output is the probability-weighted sum of dequantized value rows in key order, divided by the sum once.
 * Masked keys and keys after the query's position are never read. A task is one sequence and its arithmetic depends
 * only on that sequence's inputs, so results do not depend on the batch, the tier the rows came from or the thread.
 *
 * <p>The vector path needs {@code groupSize / 8} words to be a multiple of the lane count (groups of 64 on AVX2; every
 * OPT from 125M up). Smaller groups (toy models with head_dim below 64) run {@link #sequenceScalar}, the same
 * computation element by element with FlexGen's {@code q / scale + min}, which is also this kernel's scalar twin.
 */
public final class QuantizedAttention implements AutoCloseable {

    private static final int L = NibbleKernels.L;
    private static final ValueLayout.OfFloat F32 = QuantizedMatrix.F32;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Sequences are handed out one at a time to the pool's threads (the caller's included). */
    private final WorkerPool pool;

    /** A kernel running on {@code threads} threads (the caller's included). */
    public QuantizedAttention(int threads) {
        this.pool = new WorkerPool(threads);
    }

    /** Geometry of one call. */
    record Shape(int batch, int qLen, int kvLen, int capacity, KvRowFormat format) {
        int hidden() {
            return format.heads() * format.headDim();
        }
    }

    /** True when {@link #attention} takes the vector path for this format. */
    public static boolean vectorized(KvRowFormat format) {
        return (format.groupSize() / 8) % L == 0;
    }

    /**
     * Attention of {@code batch} sequences of {@code qLen} queries ([batch][qLen][heads * headDim] fp32, already
     * scaled by headDim^-1/2) against compressed keys and values at positions [0, kvLen) (the queries' own among
     * them); {@code keyValid} is [batch][capacity] floats, 1 for a real token. Output like the queries.
     */
    public void attention(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment keyValid,
                          MemorySegment out, int batch, int qLen, int kvLen, int capacity, KvRowFormat format) {
        if (qLen > kvLen || kvLen > capacity) {
            throw new IllegalArgumentException(
                    "need qLen <= kvLen <= capacity, got " + qLen + ", " + kvLen + ", " + capacity);
        }
        Shape shape = new Shape(batch, qLen, kvLen, capacity, format);
        boolean vector = vectorized(format);
        pool.parallelFor(batch, b -> {
            if (vector) {
                sequenceVector(q, kCache, vCache, keyValid, out, shape, b);
            } else {
                sequenceScalar(q, kCache, vCache, keyValid, out, shape, b);
            }
        });
    }

    /** The scalar twin of {@link #attention}, single-threaded, element by element. */
    public static void attentionReference(MemorySegment q, MemorySegment kCache, MemorySegment vCache,
                                          MemorySegment keyValid, MemorySegment out, int batch, int qLen, int kvLen,
                                          int capacity, KvRowFormat format) {
        Shape shape = new Shape(batch, qLen, kvLen, capacity, format);
        for (int b = 0; b < batch; b++) {
            sequenceScalar(q, kCache, vCache, keyValid, out, shape, b);
        }
    }

    /** Per-thread scratch, grown on demand, so decode tasks allocate nothing. */
    private static final class Scratch {
        float[] valid = new float[0];
        float[] scores = new float[0];
        float[] query = new float[0];
        float[] acc = new float[0];
        float[] max = new float[0];
        float[] sum = new float[0];
        final float[] lanes = new float[L];

        void ensure(int kvLen, int heads, int padded) {
            if (valid.length < kvLen || scores.length < heads * kvLen) {
                valid = new float[kvLen];
                scores = new float[heads * kvLen];
            }
            if (query.length < heads * padded || max.length < heads) {
                query = new float[heads * padded];
                acc = new float[heads * padded];
                max = new float[heads];
                sum = new float[heads];
            }
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** All queries of sequence b, every head, reading the cache in registers. */
    static void sequenceVector(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment keyValid,
                               MemorySegment out, Shape shape, int b) {
        KvRowFormat f = shape.format();
        int heads = f.heads();
        int headDim = f.headDim();
        int g = f.groupSize();
        int gph = f.groupsPerHead();
        int words = g / 8;
        int padded = gph * g; // a head's values rounded up to whole groups
        int kvLen = shape.kvLen();
        int hidden = shape.hidden();
        long rowBytes = f.rowBytes();
        long codeBytes = f.codeBytes();
        long seqBytes = (long) b * shape.capacity() * rowBytes;
        Scratch s = SCRATCH.get();
        s.ensure(kvLen, heads, padded);
        float[] valid = s.valid, scores = s.scores, query = s.query, acc = s.acc, max = s.max, sum = s.sum;
        float[] lanes = s.lanes;
        MemorySegment.copy(keyValid, F32, 4L * b * shape.capacity(), valid, 0, kvLen);
        java.util.Arrays.fill(query, 0, heads * padded, 0f); // the padding stays zero
        for (int t = 0; t < shape.qLen(); t++) {
            long qBytes = 4L * ((long) b * shape.qLen() + t) * hidden;
            int position = kvLen - shape.qLen() + t;
            for (int h = 0; h < heads; h++) {
                MemorySegment.copy(q, F32, qBytes + 4L * h * headDim, query, h * padded, headDim);
            }
            java.util.Arrays.fill(max, 0, heads, Float.NEGATIVE_INFINITY);
            boolean any = false;
            for (int j = 0; j <= position; j++) {
                if (valid[j] == 0f) {
                    continue;
                }
                any = true;
                long row = seqBytes + j * rowBytes;
                for (int h = 0; h < heads; h++) {
                    FloatVector dot = FloatVector.zero(NibbleKernels.F);
                    for (int gr = 0; gr < gph; gr++) {
                        long slot = (long) h * gph + gr;
                        long meta = row + codeBytes + slot * 4;
                        FloatVector step = NibbleKernels.stepAt(kCache, meta);
                        FloatVector mn = NibbleKernels.minAt(kCache, meta);
                        for (int w = 0; w < words; w += L) {
                            IntVector v = IntVector.fromMemorySegment(NibbleKernels.I, kCache,
                                    row + (slot * words + w) * 4, LE);
                            int qi = h * padded + gr * g + w;
                            for (int sh = 0; sh < 32; sh += 4, qi += words) {
                                dot = FloatVector.fromArray(NibbleKernels.F, query, qi)
                                        .fma(NibbleKernels.codes(v, sh).fma(step, mn), dot);
                            }
                        }
                    }
                    dot.intoArray(lanes, 0);
                    float score = NibbleKernels.sum(lanes, 0);
                    scores[h * kvLen + j] = score;
                    max[h] = Math.max(max[h], score);
                }
            }
            if (!any) {
                // A pad query sees nothing; zeros rather than NaN keep later layers finite.
                out.asSlice(qBytes, 4L * hidden).fill((byte) 0);
                continue;
            }
            MaskedSoftmax.exponentiate(scores, valid, max, sum, heads, kvLen, position);
            java.util.Arrays.fill(acc, 0, heads * padded, 0f);
            for (int j = 0; j <= position; j++) {
                if (valid[j] == 0f) {
                    continue;
                }
                long row = seqBytes + j * rowBytes;
                for (int h = 0; h < heads; h++) {
                    FloatVector p = FloatVector.broadcast(NibbleKernels.F, scores[h * kvLen + j]);
                    for (int gr = 0; gr < gph; gr++) {
                        long slot = (long) h * gph + gr;
                        long meta = row + codeBytes + slot * 4;
                        FloatVector step = NibbleKernels.stepAt(vCache, meta);
                        FloatVector mn = NibbleKernels.minAt(vCache, meta);
                        for (int w = 0; w < words; w += L) {
                            IntVector v = IntVector.fromMemorySegment(NibbleKernels.I, vCache,
                                    row + (slot * words + w) * 4, LE);
                            int ai = h * padded + gr * g + w;
                            for (int sh = 0; sh < 32; sh += 4, ai += words) {
                                NibbleKernels.codes(v, sh).fma(step, mn)
                                        .fma(p, FloatVector.fromArray(NibbleKernels.F, acc, ai))
                                        .intoArray(acc, ai);
                            }
                        }
                    }
                }
            }
            for (int h = 0; h < heads; h++) {
                float total = sum[h];
                for (int d = 0; d < headDim; d++) {
                    out.set(F32, qBytes + 4L * (h * headDim + d), acc[h * padded + d] / total);
                }
            }
        }
    }

    /** Sequence b element by element, each value decoded with FlexGen's {@code q / scale + min}. */
    static void sequenceScalar(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment keyValid,
                               MemorySegment out, Shape shape, int b) {
        KvRowFormat f = shape.format();
        int heads = f.heads();
        int headDim = f.headDim();
        int kvLen = shape.kvLen();
        int hidden = shape.hidden();
        long rowBytes = f.rowBytes();
        long seqBytes = (long) b * shape.capacity() * rowBytes;
        float[] scores = new float[kvLen];
        boolean[] visible = new boolean[kvLen];
        for (int t = 0; t < shape.qLen(); t++) {
            long qBytes = 4L * ((long) b * shape.qLen() + t) * hidden;
            int position = kvLen - shape.qLen() + t;
            for (int h = 0; h < heads; h++) {
                float max = Float.NEGATIVE_INFINITY;
                boolean any = false;
                for (int j = 0; j <= position; j++) {
                    visible[j] = keyValid.getAtIndex(F32, (long) b * shape.capacity() + j) != 0f;
                    if (!visible[j]) {
                        continue;
                    }
                    long row = seqBytes + j * rowBytes;
                    float dot = 0f;
                    for (int d = 0; d < headDim; d++) {
                        dot += q.get(F32, qBytes + 4L * (h * headDim + d)) * f.value(kCache, row, h, d);
                    }
                    scores[j] = dot;
                    max = Math.max(max, dot);
                    any = true;
                }
                float total = 0f;
                for (int j = 0; j <= position; j++) {
                    if (visible[j]) {
                        scores[j] = (float) Math.exp(scores[j] - max);
                        total += scores[j];
                    }
                }
                for (int d = 0; d < headDim; d++) {
                    float acc = 0f;
                    if (any) {
                        for (int j = 0; j <= position; j++) {
                            if (visible[j]) {
                                acc += scores[j] * f.value(vCache, seqBytes + j * rowBytes, h, d);
                            }
                        }
                        acc /= total;
                    }
                    out.set(F32, qBytes + 4L * (h * headDim + d), acc);
                }
            }
        }
    }

    @Override
    public void close() {
        pool.close();
    }
}
