package io.flexstream.quant;

/**
 * FlexGen's per-group arithmetic (FLEXGEN.md section 4.1), shared by every layout in this package so that the generic
 * tensor quantizer, the weight matrix and the KV cache produce the same codes for the same group.
 *
 * <p>All arithmetic is fp32 in FlexGen's operation order: {@code scale = 15f / (mx - mn)},
 * {@code q = rint(clamp((x - mn) * scale, 0, 15))}, {@code x' = q / scale + mn}. Rounding is half-to-even
 * ({@link Math#rint}), as torch.round.
 *
 * <p>Degenerate groups: FlexGen's scale is +inf for a constant group and overflows fp16 when the range is below about
 * 2.3e-4; it then decodes correctly only by accident (q / inf = 0). Here the scale is clamped to the largest finite
 * value of the metadata precision <em>before</em> quantizing, so encoder and decoder agree, every code is 0..15, and a
 * constant group decodes exactly to its constant. A range so large that 15 / range underflows is clamped to the
 * smallest normal value (codes then saturate at 15; it cannot happen for finite weights below about 2e5 in range).
 */
final class GroupMath {

    /** 4 bits: codes 0..15. */
    static final int BITS = 4;
    static final int LEVELS = (1 << BITS) - 1;

    private GroupMath() {
    }

    /** The multiplier 15 / (mx - mn) in fp32, clamped so that it is finite and non-zero in {@code precision}. */
    static float scale(float mn, float mx, MetadataPrecision precision) {
        float range = mx - mn;
        float s = LEVELS / range; // +inf for a constant group
        float max = precision.maxScale();
        if (!(s <= max)) { // also catches NaN from inf - inf
            s = max;
        }
        float min = precision == MetadataPrecision.FP16 ? Float.float16ToFloat((short) 0x0400) : Float.MIN_NORMAL;
        return Math.max(s, min);
    }

    /** The 4-bit code of x, with the unrounded fp32 scale and min (FlexGen quantizes before storing fp16 metadata). */
    static int code(float x, float mn, float scale) {
        float v = (x - mn) * scale;
        if (!(v > 0f)) {
            return 0;
        }
        if (v >= LEVELS) {
            return LEVELS;
        }
        return (int) Math.rint(v);
    }

    /** FlexGen's decode, fp32: {@code q / scale + mn}. */
    static float decode(int q, float scale, float mn) {
        return q / scale + mn;
    }
}
