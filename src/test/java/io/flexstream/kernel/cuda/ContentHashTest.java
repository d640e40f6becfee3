package io.flexstream.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

/**
 * The verified weight cache trusts a hit only when the hash matches, so the hash must change with any byte (first,
 * last, at piece boundaries, in the unaligned tail) and must not depend on how many threads computed it.
 */
class ContentHashTest {

    @Test
    void anyChangedByteChangesTheHashAndThreadsDoNot() {
        long bytes = 2 * ContentHash.PIECE + 13; // three pieces, the last with a tail that is not a whole word
        try (Arena arena = Arena.ofShared(); HostCopier one = new HostCopier(1); HostCopier three = new HostCopier(3)) {
            MemorySegment s = arena.allocate(bytes);
            var random = new SplittableRandom(1);
            for (long i = 0; i < bytes; i += 8) {
                s.set(ValueLayout.JAVA_LONG_UNALIGNED, Math.min(i, bytes - 8), random.nextLong());
            }
            long reference = new ContentHash(one).of(s, bytes);
            assertEquals(reference, new ContentHash(three).of(s, bytes), "thread count changed the hash");
            for (long at : new long[] {0, 7, ContentHash.PIECE - 1, ContentHash.PIECE, 2 * ContentHash.PIECE + 5,
                    bytes - 1}) {
                byte old = s.get(ValueLayout.JAVA_BYTE, at);
                s.set(ValueLayout.JAVA_BYTE, at, (byte) (old ^ 1));
                assertNotEquals(reference, new ContentHash(three).of(s, bytes), "byte " + at + " flipped");
                s.set(ValueLayout.JAVA_BYTE, at, old);
            }
            assertEquals(reference, new ContentHash(three).of(s, bytes));
            assertNotEquals(reference, new ContentHash(three).of(s, bytes - 1), "the length takes part");
        }
    }

    @Test
    void swappedWordsHashDifferently() {
        try (Arena arena = Arena.ofConfined(); HostCopier one = new HostCopier(1)) {
            MemorySegment a = arena.allocate(16);
            MemorySegment b = arena.allocate(16);
            a.set(ValueLayout.JAVA_LONG, 0, 1L);
            a.set(ValueLayout.JAVA_LONG, 8, 2L);
            b.set(ValueLayout.JAVA_LONG, 0, 2L);
            b.set(ValueLayout.JAVA_LONG, 8, 1L);
            assertNotEquals(new ContentHash(one).of(a, 16), new ContentHash(one).of(b, 16));
        }
    }
}
