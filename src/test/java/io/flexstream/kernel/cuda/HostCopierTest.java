package io.flexstream.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicIntegerArray;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** The staging copier moves exactly the bytes asked for, whether it splits the copy or not. */
class HostCopierTest {

    @ParameterizedTest(name = "threads={0} bytes={1}")
    @CsvSource({"1, 1000", "3, 1000", "3, 12582917", "4, 33554432", "8, 4194304"})
    void copiesExactlyTheRangeAskedFor(int threads, long bytes) {
        try (Arena arena = Arena.ofShared(); HostCopier copier = new HostCopier(threads)) {
            MemorySegment src = arena.allocate(bytes + 64);
            MemorySegment dst = arena.allocate(bytes + 64);
            var random = new SplittableRandom(bytes);
            for (long i = 0; i < src.byteSize(); i++) {
                src.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
            }
            dst.fill((byte) 0x55);
            copier.copy(src, 7, dst, 13, bytes);
            assertEquals(-1, MemorySegment.mismatch(src, 7, 7 + bytes, dst, 13, 13 + bytes));
            for (long i : new long[] {0, 12, 13 + bytes, dst.byteSize() - 1}) {
                assertEquals((byte) 0x55, dst.get(ValueLayout.JAVA_BYTE, i), "byte " + i + " outside the range");
            }
        }
    }

    @Test
    void forEachRunsEveryTaskOnceAndReportsFailures() {
        try (HostCopier copier = new HostCopier(3)) {
            AtomicIntegerArray runs = new AtomicIntegerArray(17);
            copier.forEach(17, runs::incrementAndGet);
            int[] counts = new int[17];
            for (int i = 0; i < 17; i++) {
                counts[i] = runs.get(i);
            }
            int[] once = new int[17];
            java.util.Arrays.fill(once, 1);
            assertArrayEquals(once, counts);
            var e = assertThrows(IllegalStateException.class, () -> copier.forEach(5, t -> {
                if (t == 4) {
                    throw new IllegalArgumentException("task 4 broke");
                }
            }));
            assertTrue(String.valueOf(e.getMessage()).contains("task 4 broke") || e.getCause() != null, e.toString());
        }
    }
}
