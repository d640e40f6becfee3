package io.flexstream.model;

import io.flexstream.tensor.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.stream.LongStream;

/**
 * Bulk conversion between a checkpoint's little-endian storage types and the engine's fp32 in native byte order.
 *
 * <p>Loading a multi-GB fp16 checkpoint is dominated by this loop, so it works in chunks of {@link #CHUNK} elements
 * spread over the common fork-join pool (both cores on the dev box), with straight loops the JIT compiles well:
 * {@link Float#float16ToFloat} is an intrinsic (F16C on x86), and bf16 is just a 16-bit shift.
 */
public final class Fp32Conversion {

    /** Elements per parallel task: large enough to amortise scheduling, small enough to balance two or more cores. */
    static final long CHUNK = 1L << 20;

    private static final ValueLayout.OfFloat F32_NATIVE = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private Fp32Conversion() {
    }

    /**
     * Widens {@code count} elements of {@code type} (little-endian, as stored) from {@code src} to native-order fp32 in
     * {@code dst}. Both segments must be accessible from any thread when count exceeds one chunk.
     */
    public static void toF32(DType type, MemorySegment src, MemorySegment dst, long count) {
        forEachChunk(count, (from, to) -> toF32Range(type, src, dst, from, to));
    }

    /** Narrows native-order fp32 to {@code type} (little-endian), rounding to nearest even. */
    public static void fromF32(DType type, MemorySegment src, MemorySegment dst, long count) {
        forEachChunk(count, (from, to) -> {
            for (long i = from; i < to; i++) {
                type.write(dst, i, src.getAtIndex(F32_NATIVE, i));
            }
        });
    }

    private interface Range {
        void run(long from, long to);
    }

    private static void forEachChunk(long count, Range body) {
        if (count <= CHUNK) {
            body.run(0, count);
            return;
        }
        long chunks = (count + CHUNK - 1) / CHUNK;
        LongStream.range(0, chunks).parallel().forEach(c -> body.run(c * CHUNK, Math.min(count, (c + 1) * CHUNK)));
    }

    private static void toF32Range(DType type, MemorySegment src, MemorySegment dst, long from, long to) {
        switch (type) {
            case F32 -> MemorySegment.copy(src, DType.FLOAT_LE, from * 4, dst, F32_NATIVE, from * 4, to - from);
            case F16 -> {
                for (long i = from; i < to; i++) {
                    dst.setAtIndex(F32_NATIVE, i, Float.float16ToFloat(src.getAtIndex(DType.SHORT_LE, i)));
                }
            }
            case BF16 -> {
                for (long i = from; i < to; i++) {
                    int bits = (src.getAtIndex(DType.SHORT_LE, i) & 0xffff) << 16;
                    dst.setAtIndex(F32_NATIVE, i, Float.intBitsToFloat(bits));
                }
            }
        }
    }
}
