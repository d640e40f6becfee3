package io.flexstream.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * IEEE binary16 storage of fp32 values: narrowing (round to nearest even, once, when weights are placed) and
 * widening (every time fp16 weights are loaded into the device tier's fp32 buffers, so it must keep up with the
 * disk). Half floats are stored in native byte order, like every fp32 tensor of the engine.
 *
 * <p>Widening is exact, so it needs no rounding: with {@code m = h & 0x7fff}, the float whose bits are
 * {@code m << 13} has the half's exponent field in the low five bits of its own exponent, i.e. it equals the half's
 * magnitude times 2^-112, for normal and subnormal halves alike (a subnormal half becomes a subnormal float); one
 * multiplication by 2^112 restores it exactly. Infinities and NaNs (half exponent 31) take the float exponent 255
 * instead, keeping the payload, and the sign bit moves from bit 15 to bit 31. Eight halves per step (a 128-bit load
 * widened to a 256-bit int vector), so one AVX2 register of floats per step.
 */
public final class HalfFloats {

    /** A half float in memory: native order, any alignment. */
    public static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED;

    private static final VectorSpecies<Short> HALVES = ShortVector.SPECIES_128;
    private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_256;
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final int LANES = HALVES.length();

    private HalfFloats() {
    }

    /** Widens {@code count} halves at {@code src + srcOffset} into floats at {@code dst + dstOffset}. */
    public static void widen(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long count) {
        long i = 0;
        long bound = count - count % LANES;
        for (; i < bound; i += LANES) {
            ShortVector h = ShortVector.fromMemorySegment(HALVES, src, srcOffset + 2 * i, ORDER);
            IntVector x = (IntVector) h.convertShape(VectorOperators.S2I, INTS, 0);
            IntVector magnitude = x.and(0x7fff).lanewise(VectorOperators.LSHL, 13);
            IntVector scaled = magnitude.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
            VectorMask<Integer> special = x.and(0x7c00).eq(0x7c00);
            IntVector bits = scaled.blend(magnitude.or(0x7f800000), special)
                    .or(x.and(0x8000).lanewise(VectorOperators.LSHL, 16));
            bits.reinterpretAsFloats().intoMemorySegment(dst, dstOffset + 4 * i, ORDER);
        }
        for (; i < count; i++) {
            dst.set(ValueLayout.JAVA_FLOAT_UNALIGNED, dstOffset + 4 * i,
                    Float.float16ToFloat(src.get(HALF, srcOffset + 2 * i)));
        }
    }

    /** Narrows {@code count} floats to halves, rounding to nearest even (overflow to infinity, as IEEE says). */
    public static void narrow(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long count) {
        for (long i = 0; i < count; i++) {
            dst.set(HALF, dstOffset + 2 * i,
                    Float.floatToFloat16(src.get(ValueLayout.JAVA_FLOAT_UNALIGNED, srcOffset + 4 * i)));
        }
    }
}
