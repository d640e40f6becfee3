package io.flexstream.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * IEEE binary16 storage of fp32 values: narrowing (round to nearest even, once, when weights are placed) and
 * widening (every time fp16 weights are loaded into the device tier's fp32 buffers, so it must keep up with the
 * disk). Half floats are stored in native byte order, like every fp32 tensor of the engine.
 *
 * <p>Widening is a plain loop over {@link Float#float16ToFloat}, which C2 compiles to the F16C conversion and
 * vectorizes. A Vector API version (widen to int lanes, shift the magnitude, scale by 2^112, patch infinities and
 * NaNs) measured the same in steady state on the build VM (2-4 GB/s of halves per core, 2M-half calls; both noisy
 * under load) but took 3.5 s for its first 100M halves until C2 compiled it, which the first fp16 layer loads of a
 * run would pay; so the simple loop stays.
 */
public final class HalfFloats {

    /** A half float in memory: native order, any alignment. */
    public static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private HalfFloats() {
    }

    /** Widens {@code count} halves at {@code src + srcOffset} into floats at {@code dst + dstOffset} (exact). */
    public static void widen(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long count) {
        for (long i = 0; i < count; i++) {
            dst.set(F32, dstOffset + 4 * i, Float.float16ToFloat(src.get(HALF, srcOffset + 2 * i)));
        }
    }

    /** Narrows {@code count} floats to halves, rounding to nearest even (overflow to infinity, as IEEE says). */
    public static void narrow(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long count) {
        for (long i = 0; i < count; i++) {
            dst.set(HALF, dstOffset + 2 * i, Float.floatToFloat16(src.get(F32, srcOffset + 4 * i)));
        }
    }
}
