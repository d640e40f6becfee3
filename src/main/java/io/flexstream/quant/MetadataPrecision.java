package io.flexstream.quant;

/**
 * How a group's (scale, min) pair is stored. FlexGen stores fp16 (its C:46); fp32 is offered for exactness checks.
 * The values held in memory are always floats that are exactly representable in the chosen precision.
 */
public enum MetadataPrecision {
    /** 2 bytes per value: FlexGen's choice, the one that meets the 0.29x-of-fp16 budget (36 bytes per 64 values). */
    FP16(2),
    /** 4 bytes per value (40 bytes per 64 values, 0.3125x of fp16). */
    FP32(4);

    private final int bytes;

    MetadataPrecision(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per stored metadata value. */
    public int bytes() {
        return bytes;
    }

    /** Rounds a float to this precision (round to nearest even for fp16), keeping it as a float. */
    public float round(float v) {
        return this == FP16 ? Float.float16ToFloat(Float.floatToFloat16(v)) : v;
    }

    /** The largest finite scale this precision stores; scales are clamped to it so that tiny ranges give no inf. */
    float maxScale() {
        return this == FP16 ? Float.float16ToFloat((short) 0x7bff) : Float.MAX_VALUE;
    }
}
