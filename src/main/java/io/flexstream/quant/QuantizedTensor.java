package io.flexstream.quant;

import java.util.Arrays;

/**
 * A tensor compressed by {@link GroupQuantizer} in FlexGen's own layout (FLEXGEN.md section 4.2), kept as plain arrays
 * so that its shapes and bytes can be compared with FlexGen's test vectors.
 *
 * <p>With {@code shape = prefix + (len) + suffix} along {@code axis} and {@code groups = ceil(len / groupSize)}:
 * <ul>
 *   <li>{@code packed} has shape {@code prefix + (groups * groupSize / 2) + suffix}, one byte per pair of codes along
 *       the axis: the code at even position 2t of a group in the high nibble, 2t+1 in the low nibble;</li>
 *   <li>{@code metadata} has shape {@code prefix + (groups, 2) + suffix}: index 0 on the length-2 axis is the scale
 *       (the multiplier 15 / (max - min), not the step), index 1 the min; values are rounded to {@code precision}.</li>
 * </ul>
 * The padded tail of the last group (zeros before quantizing) is stored too; {@link GroupQuantizer#dequantize} drops
 * it.
 *
 * @param shape     original shape (elements), row-major
 * @param axis      the grouped axis
 * @param groupSize elements per group, even
 * @param precision how metadata is stored (and therefore what {@link #bytes()} counts)
 * @param packed    nibble pairs, {@link #packedShape()} row-major
 * @param metadata  (scale, min) pairs, {@link #metadataShape()} row-major
 */
public record QuantizedTensor(int[] shape, int axis, int groupSize, MetadataPrecision precision, byte[] packed,
                              float[] metadata) {

    public QuantizedTensor {
        shape = shape.clone();
        if (axis < 0 || axis >= shape.length) {
            throw new IllegalArgumentException("axis " + axis + " outside shape " + Arrays.toString(shape));
        }
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    /** Number of groups along the axis, padding included. */
    public int groups() {
        return (shape[axis] + groupSize - 1) / groupSize;
    }

    /** Shape of {@link #packed()}: the axis becomes groups * groupSize / 2. */
    public int[] packedShape() {
        int[] s = shape.clone();
        s[axis] = groups() * groupSize / 2;
        return s;
    }

    /** Shape of {@link #metadata()}: the axis becomes (groups, 2). */
    public int[] metadataShape() {
        int[] s = new int[shape.length + 1];
        System.arraycopy(shape, 0, s, 0, axis);
        s[axis] = groups();
        s[axis + 1] = 2;
        System.arraycopy(shape, axis + 1, s, axis + 2, shape.length - axis - 1);
        return s;
    }

    /** Storage bytes: packed data plus metadata at its stored precision. */
    public long bytes() {
        return packed.length + (long) metadata.length * precision.bytes();
    }

    /** One code of a packed byte: the high nibble holds the even position of the pair, the low nibble the odd one. */
    static int nibble(byte b, boolean high) {
        return high ? (b >> 4) & 0xF : b & 0xF;
    }
}
