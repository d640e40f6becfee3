package io.flexstream.kernel.cuda;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A 64-bit hash of every byte of a host segment, used by the {@link WeightTrust#VERIFY} weight cache to notice a
 * weight rewritten in place. Pieces of 16 MiB are hashed on the copier's threads and their hashes folded in order,
 * so the value depends only on the bytes (not on the thread count) and one layer of OPT-1.3B (about 200 MB) is read
 * at several threads' bandwidth rather than one's.
 */
final class ContentHash {

    static final long PIECE = 16L << 20;
    private static final long K1 = 0xC2B2AE3D27D4EB4FL;
    private static final long K2 = 0x9E3779B97F4A7C15L;

    private final HostCopier threads;

    ContentHash(HostCopier threads) {
        this.threads = threads;
    }

    long of(MemorySegment s, long bytes) {
        int pieces = (int) Math.max(1, (bytes + PIECE - 1) / PIECE);
        long[] parts = new long[pieces];
        threads.forEach(pieces, p -> parts[p] = range(s, p * PIECE, Math.min(bytes, (p + 1) * PIECE)));
        long h = K2 ^ bytes;
        for (long part : parts) {
            h = mix(h, part);
        }
        return h ^ (h >>> 29);
    }

    /** Bytes [from, to) of s: 8-byte words, then the tail byte by byte. */
    static long range(MemorySegment s, long from, long to) {
        long h = K1 ^ from;
        long words = (to - from) >>> 3;
        long at = from;
        for (long i = 0; i < words; i++, at += 8) {
            h = mix(h, s.get(ValueLayout.JAVA_LONG_UNALIGNED, at));
        }
        for (; at < to; at++) {
            h = mix(h, s.get(ValueLayout.JAVA_BYTE, at));
        }
        return h;
    }

    private static long mix(long h, long v) {
        return Long.rotateLeft(h ^ (v * K1), 31) * K2;
    }
}
