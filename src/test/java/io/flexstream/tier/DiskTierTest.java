package io.flexstream.tier;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Reads of the disk tier, cut into chunks for several reader threads, aligned reads straight into the destination
 * and unaligned ones through staging, return exactly the bytes written, at every offset and length.
 */
class DiskTierTest {

    private static final long SIZE = 3 * DiskTier.CHUNK + 12345;

    private static MemorySegment pattern(Arena arena, long bytes, long seed) {
        MemorySegment s = arena.allocate(bytes, 4096);
        SplittableRandom random = new SplittableRandom(seed);
        for (long i = 0; i + 8 <= bytes; i += 8) {
            s.set(ValueLayout.JAVA_LONG_UNALIGNED, i, random.nextLong());
        }
        return s;
    }

    @Test
    void chunkedParallelReadsReturnTheWrittenBytes(@TempDir Path dir) {
        try (DiskTier disk = new DiskTier(dir, SIZE, true); Arena arena = Arena.ofShared();
             DiskTier.Region region = disk.allocate(SIZE, "test")) {
            MemorySegment data = pattern(arena, SIZE, 1);
            region.write(0, data, 0, SIZE);
            MemorySegment out = arena.allocate(SIZE + 8192, 4096);
            SplittableRandom random = new SplittableRandom(2);
            long[][] cases = {{0, SIZE, 0}, {4096, 2 * DiskTier.CHUNK, 4096}, {1, SIZE - 1, 3}, {4096, 100000, 7}};
            for (int trial = 0; trial < cases.length + 20; trial++) {
                long offset;
                long length;
                long dstOffset;
                if (trial < cases.length) {
                    offset = cases[trial][0];
                    length = cases[trial][1];
                    dstOffset = cases[trial][2];
                } else {
                    offset = random.nextLong(SIZE);
                    length = random.nextLong(SIZE - offset + 1);
                    dstOffset = random.nextBoolean() ? offset % 4096 : random.nextLong(4096);
                }
                out.fill((byte) 0);
                region.read(offset, out, dstOffset, length);
                assertEquals(-1, data.asSlice(offset, length).mismatch(out.asSlice(dstOffset, length)),
                        "read of [" + offset + ", +" + length + ") into +" + dstOffset);
            }
        }
    }

    @Test
    void sinkReadsDeliverEveryByteOnceWithItsOffset(@TempDir Path dir) {
        try (DiskTier disk = new DiskTier(dir, SIZE, true); Arena arena = Arena.ofShared();
             DiskTier.Region region = disk.allocate(SIZE, "test")) {
            MemorySegment data = pattern(arena, SIZE, 3);
            region.write(0, data, 0, SIZE);
            long offset = 777;
            long length = SIZE - 1000;
            MemorySegment out = arena.allocate(length, 64);
            AtomicLong delivered = new AtomicLong();
            region.read(offset, length, (src, srcOffset, at, n) -> {
                MemorySegment.copy(src, srcOffset, out, at, n);
                delivered.addAndGet(n);
            });
            assertEquals(length, delivered.get());
            assertEquals(-1, data.asSlice(offset, length).mismatch(out));
            assertEquals(length, disk.bytesRead());
        }
    }

    /** Only reads of a megabyte or more are timed for the delivered bandwidth; small ones are request bound. */
    @Test
    void largeReadsAloneMakeTheDeliveredReadRate(@TempDir Path dir) {
        try (DiskTier disk = new DiskTier(dir, SIZE, true); Arena arena = Arena.ofShared();
             DiskTier.Region region = disk.allocate(SIZE, "test")) {
            region.write(0, pattern(arena, SIZE, 3), 0, SIZE);
            MemorySegment out = arena.allocate(SIZE, 4096);
            region.read(0, out, 0, DiskTier.LARGE_READ - 4096);
            assertEquals(0, disk.largeReadBytes());
            assertEquals(0.0, disk.largeReadRate());
            region.read(0, out, 0, SIZE);
            region.read(4096, DiskTier.LARGE_READ, (src, srcOffset, at, length) -> { });
            assertEquals(SIZE + DiskTier.LARGE_READ, disk.largeReadBytes());
            assertTrue(disk.largeReadRate() > 0);
        }
    }

    /** Many reads at once land exactly where the same reads one by one would, chunk-crossing ones included. */
    @Test
    void readAllEqualsTheReadsOneByOne(@TempDir Path dir) {
        try (DiskTier disk = new DiskTier(dir, SIZE, true); Arena arena = Arena.ofShared();
             DiskTier.Region region = disk.allocate(SIZE, "test")) {
            region.write(0, pattern(arena, SIZE, 4), 0, SIZE);
            SplittableRandom random = new SplittableRandom(5);
            int n = 40;
            long[] offsets = new long[n];
            long[] lengths = new long[n];
            long[] dstOffsets = new long[n];
            long at = 0;
            for (int i = 0; i < n; i++) {
                offsets[i] = i == 0 ? DiskTier.CHUNK - 1000 : random.nextLong(SIZE);   // the first crosses a chunk
                lengths[i] = i == 0 ? Math.min(SIZE - offsets[i], DiskTier.CHUNK + 5000)
                        : random.nextLong(Math.min(SIZE - offsets[i], 20000) + 1);
                dstOffsets[i] = at + random.nextLong(4096);
                at = dstOffsets[i] + lengths[i];
            }
            MemorySegment together = arena.allocate(at, 4096);
            MemorySegment oneByOne = arena.allocate(at, 4096);
            region.readAll(offsets, together, dstOffsets, lengths);
            for (int i = 0; i < n; i++) {
                region.read(offsets[i], oneByOne, dstOffsets[i], lengths[i]);
            }
            assertEquals(-1, together.mismatch(oneByOne));
        }
    }
}
