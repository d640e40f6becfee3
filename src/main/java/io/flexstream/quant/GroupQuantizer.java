package io.flexstream.quant;

import java.util.Arrays;

/**
 * FlexGen's 4-bit group-wise asymmetric quantizer for a tensor of any rank along any axis (FLEXGEN.md section 4),
 * reproducing its codes, packing and metadata layout; see {@link GroupMath} for the arithmetic and the handling of
 * constant groups, and {@link QuantizedTensor} for the layout.
 *
 * <p>This is the reference form (plain arrays, FlexGen's layout), used for the test vectors and for tensors without a
 * fused kernel. Weights used by the matrix product take {@link QuantizedMatrix}, the KV cache
 * {@link KvRowFormat}: same groups and codes, a byte order chosen for vector unpacking.
 *
 * @param groupSize elements per group along the axis; even (FlexGen asserts it), 64 by default
 * @param precision metadata storage precision; FlexGen's is fp16
 */
public record GroupQuantizer(int groupSize, MetadataPrecision precision) {

    /** FlexGen's default group size. */
    public static final int DEFAULT_GROUP_SIZE = 64;

    public GroupQuantizer {
        if (groupSize < 2 || groupSize % 2 != 0) {
            throw new IllegalArgumentException("groupSize must be even and >= 2, got " + groupSize);
        }
    }

    /** FlexGen's configuration: groups of 64, fp16 metadata. */
    public static GroupQuantizer flexGen() {
        return new GroupQuantizer(DEFAULT_GROUP_SIZE, MetadataPrecision.FP16);
    }

    /**
     * Quantizes {@code data} (row-major, {@code shape}) along {@code axis}; the last group along the axis is padded
     * with zeros, which take part in its min and max as in FlexGen.
     */
    public QuantizedTensor quantize(float[] data, int[] shape, int axis) {
        Geometry g = Geometry.of(shape, axis, groupSize);
        if (data.length != g.elements()) {
            throw new IllegalArgumentException("data has " + data.length + " elements, shape " + Arrays.toString(shape)
                    + " needs " + g.elements());
        }
        byte[] packed = new byte[Math.toIntExact((long) g.outer * g.groups * (groupSize / 2) * g.inner)];
        float[] meta = new float[Math.toIntExact((long) g.outer * g.groups * 2 * g.inner)];
        int[] codes = new int[groupSize];
        for (int o = 0; o < g.outer; o++) {
            for (int gr = 0; gr < g.groups; gr++) {
                for (int i = 0; i < g.inner; i++) {
                    float mn = Float.POSITIVE_INFINITY;
                    float mx = Float.NEGATIVE_INFINITY;
                    for (int t = 0; t < groupSize; t++) {
                        float x = g.valueOrPad(data, o, gr * groupSize + t, i);
                        mn = Math.min(mn, x);
                        mx = Math.max(mx, x);
                    }
                    float scale = GroupMath.scale(mn, mx, precision);
                    for (int t = 0; t < groupSize; t++) {
                        codes[t] = GroupMath.code(g.valueOrPad(data, o, gr * groupSize + t, i), mn, scale);
                    }
                    for (int t = 0; t < groupSize; t += 2) {
                        int pairPos = gr * (groupSize / 2) + t / 2;
                        packed[(int) ((long) (o * g.groups * (groupSize / 2) + pairPos) * g.inner + i)] =
                                (byte) ((codes[t] << 4) | codes[t + 1]);
                    }
                    int metaBase = ((o * g.groups + gr) * 2) * g.inner + i;
                    meta[metaBase] = precision.round(scale);
                    meta[metaBase + g.inner] = precision.round(mn);
                }
            }
        }
        return new QuantizedTensor(shape, axis, groupSize, precision, packed, meta);
    }

    /** Dequantizes to the original shape (padding dropped): {@code x' = q / scale + min} in fp32. */
    public static float[] dequantize(QuantizedTensor t) {
        Geometry g = Geometry.of(t.shape(), t.axis(), t.groupSize());
        int half = t.groupSize() / 2;
        float[] out = new float[Math.toIntExact(g.elements())];
        byte[] packed = t.packed();
        float[] meta = t.metadata();
        for (int o = 0; o < g.outer; o++) {
            for (int l = 0; l < g.len; l++) {
                int gr = l / t.groupSize();
                int pos = l % t.groupSize();
                int pairPos = gr * half + pos / 2;
                for (int i = 0; i < g.inner; i++) {
                    byte b = packed[(o * g.groups * half + pairPos) * g.inner + i];
                    int q = QuantizedTensor.nibble(b, pos % 2 == 0);
                    int metaBase = ((o * g.groups + gr) * 2) * g.inner + i;
                    out[(o * g.len + l) * g.inner + i] = GroupMath.decode(q, meta[metaBase], meta[metaBase + g.inner]);
                }
            }
        }
        return out;
    }

    /** The tensor seen as [outer][len][inner] around the grouped axis. */
    private record Geometry(int outer, int len, int inner, int groups) {

        static Geometry of(int[] shape, int axis, int groupSize) {
            if (axis < 0 || axis >= shape.length) {
                throw new IllegalArgumentException("axis " + axis + " outside shape " + Arrays.toString(shape));
            }
            long outer = 1;
            long inner = 1;
            for (int d = 0; d < axis; d++) {
                outer *= shape[d];
            }
            for (int d = axis + 1; d < shape.length; d++) {
                inner *= shape[d];
            }
            int len = shape[axis];
            if (outer * len * inner > Integer.MAX_VALUE - 8 || len <= 0) {
                throw new IllegalArgumentException("unsupported shape " + Arrays.toString(shape));
            }
            return new Geometry((int) outer, len, (int) inner, (len + groupSize - 1) / groupSize);
        }

        long elements() {
            return (long) outer * len * inner;
        }

        /** Element (o, l, i), or the zero padding when l is past the axis length. */
        float valueOrPad(float[] data, int o, int l, int i) {
            return l < len ? data[(o * len + l) * inner + i] : 0f;
        }
    }
}
