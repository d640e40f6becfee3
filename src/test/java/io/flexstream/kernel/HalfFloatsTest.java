package io.flexstream.kernel;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Widening against an independent scalar reference written from the IEEE formats (bit arithmetic, no JDK
 * conversion), run long enough that the kernel is compiled and vectorized by C2; narrowing against the JDK.
 */
class HalfFloatsTest {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /**
     * binary16 -> binary32 from the formats: the float whose bits are the half's magnitude shifted left 13 equals
     * the half's value times 2^-112 (normal and subnormal halves alike), so one exact multiplication by 2^112
     * restores it; exponent 31 (infinity, NaN) maps to exponent 255 with the payload kept; the sign moves to bit 31.
     */
    static float reference(short h) {
        int bits = h & 0xffff;
        int magnitude = (bits & 0x7fff) << 13;
        int sign = (bits & 0x8000) << 16;
        if ((bits & 0x7c00) == 0x7c00) {
            return Float.intBitsToFloat(sign | 0x7f800000 | magnitude);
        }
        return Float.intBitsToFloat(sign | Float.floatToRawIntBits(Float.intBitsToFloat(magnitude) * 0x1p112f));
    }

    @Test
    void widensEveryHalfExactlyLikeTheScalarReference() {
        try (Arena arena = Arena.ofConfined()) {
            int n = 1 << 16;
            MemorySegment halves = arena.allocate(2L * n, 64);
            for (int h = 0; h < n; h++) {
                halves.set(HalfFloats.HALF, 2L * h, (short) h);
            }
            MemorySegment floats = arena.allocate(4L * n, 64);
            // Enough calls for C2 to compile (and vectorize) the loop; the last call's output is checked.
            for (int warm = 0; warm < 300; warm++) {
                HalfFloats.widen(halves, 0, floats, 0, n);
            }
            for (int h = 0; h < n; h++) {
                float want = reference((short) h);
                float got = floats.get(F32, 4L * h);
                if (Float.isNaN(want)) {
                    // NaN payloads may be quieted differently by the CPU's converter; NaN must stay NaN.
                    assertTrue(Float.isNaN(got), "half 0x" + Integer.toHexString(h));
                } else {
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got),
                            "half 0x" + Integer.toHexString(h) + " (" + want + ")");
                }
            }
        }
    }

    @Test
    void widensAtAnyOffsetAndLengthIncludingTheScalarTail() {
        SplittableRandom random = new SplittableRandom(5);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment halves = arena.allocate(2 * 1000 + 64, 64);
            MemorySegment floats = arena.allocate(4 * 1000 + 64, 64);
            for (int trial = 0; trial < 200; trial++) {
                long srcOffset = 2L * random.nextInt(16) + (trial % 2);
                long dstOffset = 4L * random.nextInt(16) + (trial % 3);
                int count = random.nextInt(980);
                for (int i = 0; i < count; i++) {
                    halves.set(HalfFloats.HALF, srcOffset + 2L * i,
                            Float.floatToFloat16((float) random.nextGaussian() * 3));
                }
                floats.fill((byte) 0x55);
                HalfFloats.widen(halves, srcOffset, floats, dstOffset, count);
                for (int i = 0; i < count; i++) {
                    assertEquals(reference(halves.get(HalfFloats.HALF, srcOffset + 2L * i)),
                            floats.get(F32, dstOffset + 4L * i), "trial " + trial + " element " + i);
                }
                // Nothing past the end is written.
                assertEquals((byte) 0x55, floats.get(ValueLayout.JAVA_BYTE, dstOffset + 4L * count));
            }
        }
    }

    @Test
    void narrowingRoundsToNearestEvenAndWideningInvertsIt() {
        float[] values = {0f, -0f, 1f, 65504f, 65520f, 1e-8f, 6.1e-5f, 5.96e-8f, 1.0009766f, 1.00048828125f,
                Float.POSITIVE_INFINITY, -3.14159f};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(4L * values.length, 64);
            MemorySegment half = arena.allocate(2L * values.length, 64);
            MemorySegment back = arena.allocate(4L * values.length, 64);
            MemorySegment.copy(values, 0, src, F32, 0, values.length);
            HalfFloats.narrow(src, 0, half, 0, values.length);
            HalfFloats.widen(half, 0, back, 0, values.length);
            for (int i = 0; i < values.length; i++) {
                short want = Float.floatToFloat16(values[i]);
                assertEquals(want, half.get(HalfFloats.HALF, 2L * i), "value " + values[i]);
                assertEquals(reference(want), back.get(F32, 4L * i), "value " + values[i]);
            }
            // 1 + 2^-11 lies halfway between 1 and the next half: ties go to the even one, 1.
            assertEquals(1f, back.get(F32, 4L * 9));
            assertEquals(Float.POSITIVE_INFINITY, back.get(F32, 4L * 4)); // 65520 rounds up to infinity
        }
    }
}
