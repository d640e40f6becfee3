package io.flexstream.quant;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A weight matrix W of {@code rows x cols} ([out_features, in_features], PyTorch's Linear layout) compressed to 4 bits
 * in the layout the fused kernel {@link QuantizedLinear} streams.
 *
 * <p><b>Groups run along the input dimension</b>: row r is cut into {@code groupsPerRow = ceil(cols / groupSize)}
 * groups of consecutive columns, the last one zero-padded (the zeros take part in min/max, as in FlexGen). FlexGen
 * groups weights along the output dimension instead (group_dim 0, FLEXGEN.md 4.3) because it dequantizes the whole
 * layer before an fp16 GEMM; a fused dot product wants the opposite: each output element {@code y[i][r]} is a dot
 * product of one input row with one weight row, so grouping along that row lets the kernel stream a row's bytes and
 * metadata sequentially, broadcast one (scale, min) pair per 64 products, and never mix groups in a vector. (Grouped
 * along the output dimension, each 8-wide vector of a row would need 8 different scales and mins.) The per-group math
 * (scale, rounding, clamping) is FlexGen's ({@link GroupMath}); only the axis and the byte order differ.
 *
 * <p><b>Nibble order within a group</b>: a group of g codes takes {@code g / 2} bytes, read as {@code W = g / 8}
 * little-endian 32-bit words; element e of the group sits in word {@code e mod W} at bits {@code 4 * (e div W)}
 * (nibble 0 = the lowest four bits). An int vector of V lanes loaded from words [h*V, h*V + V) then yields, for each
 * nibble s, the codes of the V <em>consecutive</em> elements {@code s*W + h*V ...}: one shift, one mask and one
 * int-to-float conversion per V codes, all in one register width, matching a plain load of x. (FlexGen's even/odd
 * byte pairing needs lane shuffles to de-interleave, and any byte order needs byte-to-float widening across register
 * widths.) For g = 64 that is 8 words: exactly one 256-bit vector per group.
 *
 * <p><b>Storage</b>: {@code packed} holds {@code rows * groupsPerRow * groupSize / 2} bytes, group (r, g) at byte
 * offset {@code (r * groupsPerRow + g) * groupSize / 2}. {@code metadata} holds per group the pair (scale, min) as
 * little-endian fp16 (FlexGen's precision), 4 bytes per group at offset {@code (r * groupsPerRow + g) * 4}; scale is
 * the multiplier 15 / (max - min). With groups of 64: 32 + 4 = 36 bytes per 64 weights, 0.281x the 128 bytes of
 * fp16 (0.141x of fp32).
 *
 * @param rows      output features (n)
 * @param cols      input features (k), the grouped dimension
 * @param groupSize elements per group, a multiple of 8 (whole words)
 * @param packed    nibbles, layout above; segments may live in any arena accessible from the kernel's threads
 * @param metadata  fp16 (scale, min) pairs, layout above
 */
public record QuantizedMatrix(int rows, int cols, int groupSize, MemorySegment packed, MemorySegment metadata) {

    /** Metadata values are little-endian fp16, whatever the host (the bytes may be written to disk as they are). */
    static final ValueLayout.OfShort FP16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** fp32 inputs and outputs are in native order, as everywhere in the kernel interface. */
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    /** Packed codes are little-endian 32-bit words, whatever the host. */
    static final ValueLayout.OfInt WORD = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public QuantizedMatrix {
        if (rows <= 0 || cols <= 0 || groupSize < 8 || groupSize % 8 != 0) {
            throw new IllegalArgumentException("bad geometry " + rows + "x" + cols + " group " + groupSize);
        }
        int gpr = (cols + groupSize - 1) / groupSize;
        if (packed.byteSize() != (long) rows * gpr * (groupSize / 2) || metadata.byteSize() != (long) rows * gpr * 4) {
            throw new IllegalArgumentException(
                    "segment sizes do not match " + rows + "x" + cols + " group " + groupSize);
        }
    }

    /** Groups per row, the padded last one included. */
    public int groupsPerRow() {
        return (cols + groupSize - 1) / groupSize;
    }

    /** Compressed bytes: nibbles plus metadata. */
    public long bytes() {
        return packed.byteSize() + metadata.byteSize();
    }

    /** The bytes the same matrix takes in fp16, for the compression ratio. */
    public long fp16Bytes() {
        return (long) rows * cols * 2;
    }

    /**
     * Quantizes an fp32 matrix ({@code rows x cols} row-major, native order) with FlexGen's math along the input
     * dimension; the result's segments are allocated from {@code arena}.
     */
    public static QuantizedMatrix quantize(MemorySegment w, int rows, int cols, int groupSize, Arena arena) {
        int half = groupSize / 2;
        int gpr = (cols + groupSize - 1) / groupSize;
        MemorySegment packed = arena.allocate((long) rows * gpr * half, 64);
        MemorySegment meta = arena.allocate((long) rows * gpr * 4, 64);
        float[] group = new float[groupSize];
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < gpr; g++) {
                long base = ((long) r * cols + (long) g * groupSize) * Float.BYTES;
                int real = Math.min(groupSize, cols - g * groupSize);
                MemorySegment.copy(w, F32, base, group, 0, real);
                java.util.Arrays.fill(group, real, groupSize, 0f);
                writeGroup(group, packed, meta, (long) r * gpr + g);
            }
        }
        return new QuantizedMatrix(rows, cols, groupSize, packed, meta);
    }

    /**
     * Quantizes one zero-padded group of {@code group.length} values into group slot {@code slot} of a packed segment
     * (slot * length / 2 bytes in) and its metadata (slot * 4 bytes in), in this class's nibble order. Shared with the
     * KV cache.
     */
    static void writeGroup(float[] group, MemorySegment packed, MemorySegment meta, long slot) {
        int words = group.length / 8;
        float mn = Float.POSITIVE_INFINITY;
        float mx = Float.NEGATIVE_INFINITY;
        for (float v : group) {
            mn = Math.min(mn, v);
            mx = Math.max(mx, v);
        }
        float scale = GroupMath.scale(mn, mx, MetadataPrecision.FP16);
        long p = slot * words * 4L;
        for (int w = 0; w < words; w++) {
            int word = 0;
            for (int nib = 0; nib < 8; nib++) {
                word |= GroupMath.code(group[nib * words + w], mn, scale) << (4 * nib);
            }
            packed.set(WORD, p + 4L * w, word);
        }
        meta.set(FP16, slot * 4, Float.floatToFloat16(scale));
        meta.set(FP16, slot * 4 + 2, Float.floatToFloat16(mn));
    }

    /** The stored scale (15 / range, fp16-rounded) of group g of row r. */
    public float scale(int r, int g) {
        return Float.float16ToFloat(metadata.get(FP16, ((long) r * groupsPerRow() + g) * 4));
    }

    /** The stored min (fp16-rounded) of group g of row r. */
    public float min(int r, int g) {
        return Float.float16ToFloat(metadata.get(FP16, ((long) r * groupsPerRow() + g) * 4 + 2));
    }

    /** The 4-bit code of W[r][c]. */
    public int code(int r, int c) {
        int words = groupSize / 8;
        int e = c % groupSize;
        long slot = (long) r * groupsPerRow() + c / groupSize;
        int word = packed.get(WORD, (slot * words + e % words) * 4);
        return (word >>> (4 * (e / words))) & 0xF;
    }

    /** Dequantizes row r into {@code out[0, cols)}: FlexGen's {@code q / scale + min} in fp32. */
    public void dequantizeRow(int r, float[] out) {
        for (int c = 0; c < cols; c++) {
            int g = c / groupSize;
            out[c] = GroupMath.decode(code(r, c), scale(r, g), min(r, g));
        }
    }

    /** Dequantizes the whole matrix into {@code out} (rows x cols fp32, native order). For tests and tools only. */
    public void dequantize(MemorySegment out) {
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            dequantizeRow(r, row);
            MemorySegment.copy(row, 0, out, F32, (long) r * cols * Float.BYTES, cols);
        }
    }
}
