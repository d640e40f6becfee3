package io.flexstream.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Element types a checkpoint may store. Compute is always fp32 on the CPU backend; the narrower types are converted
 * while loading.
 */
public enum DType {
    F32(4, "F32"),
    F16(2, "F16"),
    BF16(2, "BF16");

    /** Little-endian layouts: safetensors data is always little-endian, whatever the host. */
    public static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int bytes;
    private final String safetensorsName;

    DType(int bytes, String safetensorsName) {
        this.bytes = bytes;
        this.safetensorsName = safetensorsName;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** The dtype string safetensors headers use ("F32", "F16", "BF16"). */
    public String safetensorsName() {
        return safetensorsName;
    }

    /** Reads element {@code index} (in elements, not bytes) of a segment holding this type, as a float. */
    public float read(MemorySegment data, long index) {
        return switch (this) {
            case F32 -> data.get(FLOAT_LE, index * 4);
            case F16 -> Float.float16ToFloat(data.get(SHORT_LE, index * 2));
            case BF16 -> Float.intBitsToFloat((data.get(SHORT_LE, index * 2) & 0xffff) << 16);
        };
    }

    /** Writes {@code value} as element {@code index}, rounding to nearest-even for the 16-bit types. */
    public void write(MemorySegment data, long index, float value) {
        switch (this) {
            case F32 -> data.set(FLOAT_LE, index * 4, value);
            case F16 -> data.set(SHORT_LE, index * 2, Float.floatToFloat16(value));
            case BF16 -> data.set(SHORT_LE, index * 2, toBf16(value));
        }
    }

    private static short toBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40); // keep it a quiet NaN after truncation
        }
        int roundingBias = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    /** Parses a safetensors dtype name; returns null for types FlexStream does not read. */
    public static DType fromSafetensors(String name) {
        for (DType t : values()) {
            if (t.safetensorsName.equals(name)) {
                return t;
            }
        }
        return null;
    }
}
