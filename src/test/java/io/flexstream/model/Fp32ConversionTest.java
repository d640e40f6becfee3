package io.flexstream.model;

import io.flexstream.tensor.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;

class Fp32ConversionTest {

    private static float[] widen(DType type, short... raw) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(raw.length * 2L);
            for (int i = 0; i < raw.length; i++) {
                src.setAtIndex(DType.SHORT_LE, i, raw[i]);
            }
            MemorySegment dst = arena.allocate(raw.length * 4L);
            Fp32Conversion.toF32(type, src, dst, raw.length);
            return dst.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    @Test
    void bf16KnownValues() {
        float[] f = widen(DType.BF16, (short) 0x3f80, (short) 0xc000, (short) 0x4049, (short) 0x0000,
                (short) 0x8000, (short) 0x7f80, (short) 0xff80, (short) 0x3e80, (short) 0x0001);
        assertEquals(1f, f[0]);
        assertEquals(-2f, f[1]);
        assertEquals(3.140625f, f[2]);
        assertEquals(0f, f[3]);
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(f[4]));
        assertEquals(Float.POSITIVE_INFINITY, f[5]);
        assertEquals(Float.NEGATIVE_INFINITY, f[6]);
        assertEquals(0.25f, f[7]);
        assertEquals(Float.intBitsToFloat(0x00010000), f[8], "smallest bf16 subnormal");
    }

    @Test
    void f16KnownValues() {
        float[] f = widen(DType.F16, (short) 0x3c00, (short) 0xc000, (short) 0x7bff, (short) 0x0001,
                (short) 0x3555, (short) 0x7c00, (short) 0xfc00, (short) 0x8000);
        assertEquals(1f, f[0]);
        assertEquals(-2f, f[1]);
        assertEquals(65504f, f[2], "largest f16");
        assertEquals(0x1p-24f, f[3], "smallest f16 subnormal");
        assertEquals(0.33325195f, f[4]);
        assertEquals(Float.POSITIVE_INFINITY, f[5]);
        assertEquals(Float.NEGATIVE_INFINITY, f[6]);
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(f[7]));
        assertEquals(Float.NaN, widen(DType.F16, (short) 0x7e00)[0]);
    }

    /** Every 16-bit pattern, across several parallel chunks, equals DType's element-wise read. */
    @Test
    void bulkConversionMatchesElementwiseReadForAllPatterns() {
        long count = 2 * Fp32Conversion.CHUNK + 12345; // several chunks; i * 40503 (odd) hits all 65536 patterns
        try (Arena arena = Arena.ofShared()) {
            MemorySegment src = arena.allocate(count * 2);
            for (long i = 0; i < count; i++) {
                src.setAtIndex(DType.SHORT_LE, i, (short) (i * 40503));
            }
            MemorySegment dst = arena.allocate(count * 4);
            for (DType type : new DType[] {DType.F16, DType.BF16}) {
                Fp32Conversion.toF32(type, src, dst, count);
                for (long i = 0; i < count; i++) {
                    float expected = type.read(src, i);
                    float actual = dst.getAtIndex(ValueLayout.JAVA_FLOAT, i);
                    if (Float.floatToRawIntBits(expected) != Float.floatToRawIntBits(actual)
                            && !(Float.isNaN(expected) && Float.isNaN(actual))) {
                        assertEquals(expected, actual, type + " element " + i);
                    }
                }
            }
        }
    }

    @Test
    void f32IsCopiedIntoNativeOrder() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(8);
            src.setAtIndex(DType.FLOAT_LE, 0, 1.5f);
            src.setAtIndex(DType.FLOAT_LE, 1, -7.25f);
            MemorySegment dst = arena.allocate(8);
            Fp32Conversion.toF32(DType.F32, src, dst, 2);
            assertEquals(1.5f, dst.getAtIndex(ValueLayout.JAVA_FLOAT, 0));
            assertEquals(-7.25f, dst.getAtIndex(ValueLayout.JAVA_FLOAT, 1));
        }
    }
}
