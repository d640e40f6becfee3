package io.flexstream.quant;

import java.lang.foreign.MemorySegment;

/**
 * The byte layout of one token of a 4-bit KV cache: the keys (or values) of every head of one position, compressed as
 * FlexGen compresses its cache (group_dim 2 of (seq, batch * heads, head_dim), FLEXGEN.md 4.3). Each head's vector is
 * cut into {@code groupsPerHead = ceil(headDim / groupSize)} groups along the head dimension, the last one
 * zero-padded (the zeros take part in min/max), and each group is quantized on its own with FlexGen's math
 * ({@link GroupMath}). A token is therefore quantized once, when it is appended, and never again.
 *
 * <p><b>One token is one contiguous row</b> of {@link #rowBytes()} bytes, so the engine keeps the cache as
 * [sequence][position][row] exactly like its fp32 cache ([sequence][position][hidden floats]) and every transfer
 * (a sequence's first n positions, one new position) stays one contiguous byte range whatever the tier:
 * <ul>
 *   <li>bytes [0, codeBytes): the codes of group slot {@code head * groupsPerHead + g} at byte
 *       {@code slot * groupSize / 2}, in {@link QuantizedMatrix}'s word-interleaved nibble order (so the vector
 *       unpacking of {@link NibbleKernels} applies);</li>
 *   <li>bytes [codeBytes, rowBytes): per slot the fp16 (scale, min) pair, little-endian, 4 bytes at
 *       {@code codeBytes + slot * 4}; scale is FlexGen's multiplier 15 / (max - min).</li>
 * </ul>
 * With head_dim 64 (OPT-125M to 1.3B) and groups of 64: 36 bytes per head per token against 128 in fp16 (0.281x).
 * Head_dim 128 (6.7B and up) gives 0.281x too; head_dim 80 (2.7B) needs a second, mostly padding group (0.45x), as in
 * FlexGen.
 *
 * @param heads     attention heads
 * @param headDim   values per head
 * @param groupSize values per group: FlexGen's 64, or the head dimension rounded up to whole 32-bit words (8 codes)
 *                  when that is smaller, so a group never spans two heads
 */
public record KvRowFormat(int heads, int headDim, int groupSize) {

    /** FlexGen's group size. */
    public static final int GROUP = 64;

    public KvRowFormat {
        if (heads <= 0 || headDim <= 0 || groupSize < 8 || groupSize % 8 != 0) {
            throw new IllegalArgumentException("bad KV row geometry: heads " + heads + ", headDim " + headDim
                    + ", group " + groupSize + " (a positive multiple of 8)");
        }
    }

    /** FlexGen's grouping for a cache of {@code heads} heads of {@code headDim}: groups of 64, or one per head. */
    public static KvRowFormat of(int heads, int headDim) {
        return new KvRowFormat(heads, headDim, Math.min(GROUP, (headDim + 7) / 8 * 8));
    }

    public int groupsPerHead() {
        return (headDim + groupSize - 1) / groupSize;
    }

    /** Bytes of codes at the start of a row. */
    public long codeBytes() {
        return (long) heads * groupsPerHead() * (groupSize / 2);
    }

    /** Bytes of one token: codes plus metadata. */
    public long rowBytes() {
        return (long) heads * groupsPerHead() * (groupSize / 2 + 4);
    }

    /** Bytes the same token takes in fp16, for the compression ratio. */
    public long fp16RowBytes() {
        return (long) heads * headDim * 2;
    }

    /**
     * Quantizes one token, {@code heads * headDim} fp32 values (native order) at byte {@code srcOffset} of
     * {@code src}, into the row at byte {@code dstOffset} of {@code dst}. Safe to call from several threads on
     * different rows.
     */
    public void quantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset) {
        int gph = groupsPerHead();
        MemorySegment codes = dst.asSlice(dstOffset, codeBytes());
        MemorySegment meta = dst.asSlice(dstOffset + codeBytes(), rowBytes() - codeBytes());
        float[] group = new float[groupSize];
        for (int h = 0; h < heads; h++) {
            for (int g = 0; g < gph; g++) {
                int d0 = g * groupSize;
                int real = Math.min(groupSize, headDim - d0);
                MemorySegment.copy(src, QuantizedMatrix.F32, srcOffset + ((long) h * headDim + d0) * Float.BYTES,
                        group, 0, real);
                java.util.Arrays.fill(group, real, groupSize, 0f);
                QuantizedMatrix.writeGroup(group, codes, meta, (long) h * gph + g);
            }
        }
    }

    /** The code (0..15) of value d of head {@code head} in the row at {@code rowOffset}. */
    public int code(MemorySegment rows, long rowOffset, int head, int d) {
        long slot = (long) head * groupsPerHead() + d / groupSize;
        int words = groupSize / 8;
        int e = d % groupSize;
        int word = rows.get(QuantizedMatrix.WORD, rowOffset + (slot * words + e % words) * 4);
        return (word >>> (4 * (e / words))) & 0xF;
    }

    /** The stored scale (fp16-rounded 15 / range) of the group holding value d of head {@code head}. */
    public float scale(MemorySegment rows, long rowOffset, int head, int d) {
        return Float.float16ToFloat(rows.get(QuantizedMatrix.FP16, metaOffset(rowOffset, head, d)));
    }

    /** The stored min (fp16-rounded) of the group holding value d of head {@code head}. */
    public float min(MemorySegment rows, long rowOffset, int head, int d) {
        return Float.float16ToFloat(rows.get(QuantizedMatrix.FP16, metaOffset(rowOffset, head, d) + 2));
    }

    private long metaOffset(long rowOffset, int head, int d) {
        return rowOffset + codeBytes() + ((long) head * groupsPerHead() + d / groupSize) * 4;
    }

    /** Value d of head {@code head}, decoded with FlexGen's {@code q / scale + min} in fp32. */
    public float value(MemorySegment rows, long rowOffset, int head, int d) {
        return GroupMath.decode(code(rows, rowOffset, head, d), scale(rows, rowOffset, head, d),
                min(rows, rowOffset, head, d));
    }

    /** The whole token, every head, into {@code out[0, heads * headDim)}. */
    public void dequantize(MemorySegment rows, long rowOffset, float[] out) {
        for (int h = 0; h < heads; h++) {
            for (int d = 0; d < headDim; d++) {
                out[h * headDim + d] = value(rows, rowOffset, h, d);
            }
        }
    }
}
