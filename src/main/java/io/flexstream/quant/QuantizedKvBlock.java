package io.flexstream.quant;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The keys (or the values) of one layer for one sequence, compressed token by token as FlexGen does for its cache
 * (group_dim 2 of (seq, batch * heads, head_dim), FLEXGEN.md 4.3): each head's vector of one token is cut into
 * {@code groupsPerHead = ceil(headDim / groupSize)} groups along the head dimension, the last zero-padded, and
 * quantized on its own with FlexGen's math ({@link GroupMath}). Appending a token therefore never touches older
 * tokens.
 *
 * <p>Layout: group slot {@code (pos * heads + head) * groupsPerHead + g}; its codes at byte {@code slot * groupSize/2}
 * of {@link #packed()} in the word order of {@link QuantizedMatrix} (so the same unpacking applies), its fp16
 * (scale, min) at byte {@code slot * 4} of {@link #metadata()}. With head_dim 64 (OPT-125M to 1.3B) and groups of 64
 * that is 36 bytes per head per token against 128 in fp16 (0.281x); head_dim 80 (OPT-2.7B) needs two groups, the
 * second mostly padding (72 against 160 bytes, 0.45x), as in FlexGen; head_dim 128 gives 0.281x again.
 *
 * <p>Attention reads it compressed: {@link #scores} (a query head against every cached key of that head) and
 * {@link #weightedSum} (attention weights times the cached values), each with a scalar twin ({@code ...Reference})
 * that dequantizes element by element. The vector versions dequantize 8 codes per FMA in registers, like
 * {@link NibbleKernels}. Not thread-safe for concurrent appends; reads of positions below {@link #length()} may run
 * on any thread once appended (the segments must then come from a shared arena).
 */
public final class QuantizedKvBlock {

    private static final int L = NibbleKernels.L;

    private final int capacity;
    private final int heads;
    private final int headDim;
    private final int groupSize;
    private final int groupsPerHead;
    private final MemorySegment packed;
    private final MemorySegment metadata;
    private final float[] group;
    private int length;

    /** Room for {@code capacity} tokens of {@code heads * headDim} values, allocated from {@code arena}. */
    public QuantizedKvBlock(int capacity, int heads, int headDim, int groupSize, Arena arena) {
        if (capacity <= 0 || heads <= 0 || headDim <= 0 || groupSize < 8 || groupSize % 8 != 0) {
            throw new IllegalArgumentException("bad KV block geometry: capacity " + capacity + ", heads " + heads
                    + ", headDim " + headDim + ", group " + groupSize + " (a multiple of 8)");
        }
        this.capacity = capacity;
        this.heads = heads;
        this.headDim = headDim;
        this.groupSize = groupSize;
        this.groupsPerHead = (headDim + groupSize - 1) / groupSize;
        long slots = (long) capacity * heads * groupsPerHead;
        this.packed = arena.allocate(slots * (groupSize / 2), 64);
        this.metadata = arena.allocate(slots * 4, 64);
        this.group = new float[groupSize];
    }

    public int length() {
        return length;
    }

    public int capacity() {
        return capacity;
    }

    public MemorySegment packed() {
        return packed;
    }

    public MemorySegment metadata() {
        return metadata;
    }

    /** Bytes held for the full capacity: codes plus metadata. */
    public long bytes() {
        return packed.byteSize() + metadata.byteSize();
    }

    /** The bytes the same capacity takes in fp16. */
    public long fp16Bytes() {
        return (long) capacity * heads * headDim * 2;
    }

    /** Appends one token: {@code heads * headDim} fp32 values (native order) at byte {@code offset} of {@code src}. */
    public void append(MemorySegment src, long offset) {
        if (length == capacity) {
            throw new IllegalStateException("KV block full: " + capacity + " tokens");
        }
        for (int h = 0; h < heads; h++) {
            for (int g = 0; g < groupsPerHead; g++) {
                int d0 = g * groupSize;
                int real = Math.min(groupSize, headDim - d0);
                MemorySegment.copy(src, QuantizedMatrix.F32, offset + ((long) h * headDim + d0) * Float.BYTES,
                        group, 0, real);
                java.util.Arrays.fill(group, real, groupSize, 0f);
                QuantizedMatrix.writeGroup(group, packed, metadata, slot(length, h, g));
            }
        }
        length++;
    }

    private long slot(int pos, int head, int g) {
        return ((long) pos * heads + head) * groupsPerHead + g;
    }

    /** Value d of head {@code head} at position pos, decoded with FlexGen's {@code q / scale + min}. */
    public float value(int pos, int head, int d) {
        long slot = slot(pos, head, d / groupSize);
        int words = groupSize / 8;
        int e = d % groupSize;
        int word = packed.get(QuantizedMatrix.WORD, (slot * words + e % words) * 4);
        int q = (word >>> (4 * (e / words))) & 0xF;
        float scale = Float.float16ToFloat(metadata.get(QuantizedMatrix.FP16, slot * 4));
        float mn = Float.float16ToFloat(metadata.get(QuantizedMatrix.FP16, slot * 4 + 2));
        return GroupMath.decode(q, scale, mn);
    }

    /** Token pos, all heads, into {@code out[0, heads * headDim)}. */
    public void dequantizeToken(int pos, float[] out) {
        for (int h = 0; h < heads; h++) {
            for (int d = 0; d < headDim; d++) {
                out[h * headDim + d] = value(pos, h, d);
            }
        }
    }

    /** Scalar twin of {@link #scores}: sequential fp32 dot products of dequantized keys. */
    public void scoresReference(float[] q, int qOff, int head, int from, int to, float[] out, int outOff) {
        checkRange(head, from, to);
        for (int pos = from; pos < to; pos++) {
            float s = 0f;
            for (int d = 0; d < headDim; d++) {
                s += q[qOff + d] * value(pos, head, d);
            }
            out[outOff + pos - from] = s;
        }
    }

    /**
     * {@code out[outOff + pos - from] = q[qOff .. qOff + headDim) . K[pos][head]} for pos in [from, to): the query
     * (already scaled) against each cached key of one head.
     */
    public void scores(float[] q, int qOff, int head, int from, int to, float[] out, int outOff) {
        checkRange(head, from, to);
        int words = groupSize / 8;
        if (words % L != 0) {
            scoresReference(q, qOff, head, from, to, out, outOff);
            return;
        }
        float[] qp = new float[groupsPerHead * groupSize]; // zero-padded to whole groups
        System.arraycopy(q, qOff, qp, 0, headDim);
        float[] lanes = new float[L];
        for (int pos = from; pos < to; pos++) {
            FloatVector acc = FloatVector.zero(NibbleKernels.F);
            for (int g = 0; g < groupsPerHead; g++) {
                long slot = slot(pos, head, g);
                FloatVector step = NibbleKernels.step(metadata, slot);
                FloatVector mn = NibbleKernels.min(metadata, slot);
                for (int h = 0; h < words; h += L) {
                    IntVector v = IntVector.fromMemorySegment(NibbleKernels.I, packed, (slot * words + h) * 4,
                            ByteOrder.LITTLE_ENDIAN);
                    int qi = g * groupSize + h;
                    for (int sh = 0; sh < 32; sh += 4, qi += words) {
                        acc = FloatVector.fromArray(NibbleKernels.F, qp, qi)
                                .fma(NibbleKernels.codes(v, sh).fma(step, mn), acc);
                    }
                }
            }
            acc.intoArray(lanes, 0);
            out[outOff + pos - from] = NibbleKernels.sum(lanes, 0);
        }
    }

    /** Scalar twin of {@link #weightedSum}. */
    public void weightedSumReference(float[] weights, int wOff, int head, int from, int to, float[] out, int outOff) {
        checkRange(head, from, to);
        java.util.Arrays.fill(out, outOff, outOff + headDim, 0f);
        for (int pos = from; pos < to; pos++) {
            float p = weights[wOff + pos - from];
            for (int d = 0; d < headDim; d++) {
                out[outOff + d] += p * value(pos, head, d);
            }
        }
    }

    /**
     * {@code out[outOff + d] = sum over pos in [from, to) of weights[wOff + pos - from] * V[pos][head][d]} for d below
     * headDim (out is overwritten): attention probabilities times the cached values of one head.
     */
    public void weightedSum(float[] weights, int wOff, int head, int from, int to, float[] out, int outOff) {
        checkRange(head, from, to);
        int words = groupSize / 8;
        if (words % L != 0) {
            weightedSumReference(weights, wOff, head, from, to, out, outOff);
            return;
        }
        float[] acc = new float[groupsPerHead * groupSize]; // padding dimensions accumulate too, then are dropped
        for (int pos = from; pos < to; pos++) {
            FloatVector p = FloatVector.broadcast(NibbleKernels.F, weights[wOff + pos - from]);
            for (int g = 0; g < groupsPerHead; g++) {
                long slot = slot(pos, head, g);
                FloatVector step = NibbleKernels.step(metadata, slot);
                FloatVector mn = NibbleKernels.min(metadata, slot);
                for (int h = 0; h < words; h += L) {
                    IntVector v = IntVector.fromMemorySegment(NibbleKernels.I, packed, (slot * words + h) * 4,
                            ByteOrder.LITTLE_ENDIAN);
                    int ai = g * groupSize + h;
                    for (int sh = 0; sh < 32; sh += 4, ai += words) {
                        NibbleKernels.codes(v, sh).fma(step, mn)
                                .fma(p, FloatVector.fromArray(NibbleKernels.F, acc, ai))
                                .intoArray(acc, ai);
                    }
                }
            }
        }
        System.arraycopy(acc, 0, out, outOff, headDim);
    }

    private void checkRange(int head, int from, int to) {
        if (head < 0 || head >= heads || from < 0 || from > to || to > length) {
            throw new IndexOutOfBoundsException("head " + head + ", positions [" + from + ", " + to + ") of "
                    + length + " cached");
        }
    }
}
