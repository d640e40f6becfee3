package io.flexstream.tier;

import com.sun.nio.file.ExtendedOpenOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The disk tier: each allocation is a file in a spill directory, read and written with O_DIRECT when the file system
 * allows it, so that a benchmark measures the disk and not the page cache. O_DIRECT needs the file offset, the length
 * and the memory address aligned to the device block. Aligned block runs are read straight into the caller's memory;
 * the rest (edges of unaligned ranges, and every write) goes through per-thread aligned staging buffers.
 *
 * <p><b>Several reads in flight.</b> A read longer than {@link #CHUNK} is cut into chunks that a pool of
 * {@link #READERS} reader threads issue at once. Measured on the build VM (virtio disk, 1 GiB file, O_DIRECT, median of
 * 3, a throwaway test): one outstanding 1 MiB read gives 1.23 GB/s, 4 MiB 1.65 GB/s; 4 readers of 4 MiB 1.71 GB/s and
 * 8 readers 1.79 GB/s. While both cores compute, one reader drops to 0.63-0.99 GB/s and 8 readers of 4 MiB keep 1.20
 * GB/s: a deeper queue matters most exactly when the engine overlaps I/O with compute. Reader threads sleep in the
 * kernel while their request is served, so they take no compute time beyond the copies of unaligned edges.
 */
public final class DiskTier implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(DiskTier.class);
    /** O_DIRECT alignment and granularity: offsets, lengths and buffers of every request are multiples of it. */
    public static final int BLOCK = 4096;
    /** Reader threads, i.e. O_DIRECT requests in flight for one large read (see the class comment). */
    public static final int READERS = 8;
    /**
     * Reads this long or longer are what {@link #largeReadRate} times: long enough that the disk's bandwidth, not
     * the fixed cost of a request, decides their time (the weights of a layer, not a token's cache row).
     */
    public static final long LARGE_READ = 1L << 20;
    /** Bytes per request of a large read; a multiple of {@link #BLOCK}. */
    public static final long CHUNK = 4L << 20;
    /** Bytes of the per-thread staging buffer: the most one write request (or one staged read) moves. */
    public static final int STAGING_BYTES = 8 << 20;
    private static final ThreadLocal<MemorySegment> STAGING =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(STAGING_BYTES, BLOCK));

    private final Path directory;
    private final ByteBudget budget;
    private final boolean direct;
    private final AtomicLong nextId = new AtomicLong();
    private final AtomicLong bytesRead = new AtomicLong();
    private final AtomicLong bytesWritten = new AtomicLong();
    /** Busy time of the reads of at least {@link #LARGE_READ} bytes (see {@link #largeReadRate}). */
    private final BusyClock largeReads = new BusyClock();
    /** Busy time of every read and write (see {@link #busySeconds}). */
    private final BusyClock anyIo = new BusyClock();
    private final ExecutorService readers;

    /**
     * @param directory   spill directory (created if missing); one file per region, deleted when the region closes
     * @param budgetBytes hard limit on the bytes of all regions
     * @param wantDirect  use O_DIRECT; falls back to buffered I/O (and says so) where the file system refuses it
     */
    public DiskTier(Path directory, long budgetBytes, boolean wantDirect) {
        this.directory = directory;
        this.budget = new ByteBudget(TierKind.DISK, budgetBytes);
        try {
            Files.createDirectories(directory);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the offload directory " + directory, e);
        }
        this.direct = wantDirect && probeDirect(directory);
        AtomicInteger number = new AtomicInteger();
        this.readers = Executors.newFixedThreadPool(READERS, r -> {
            Thread t = new Thread(r, "flexstream-disk-reader-" + number.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    private static boolean probeDirect(Path directory) {
        Path probe = directory.resolve(".o_direct_probe");
        try (FileChannel ch = FileChannel.open(probe, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.READ, ExtendedOpenOption.DIRECT)) {
            MemorySegment block = Arena.ofAuto().allocate(BLOCK, BLOCK);
            ch.write(block.asByteBuffer(), 0);
            return true;
        } catch (IOException | UnsupportedOperationException e) {
            LOG.warn("O_DIRECT is not available in {} ({}); the disk tier uses buffered I/O, so disk timings will "
                    + "include the page cache", directory, e.getMessage());
            return false;
        } finally {
            try {
                Files.deleteIfExists(probe);
            } catch (IOException ignored) {
                // a stray probe file is harmless
            }
        }
    }

    public boolean direct() {
        return direct;
    }

    public Region allocate(long bytes, String what) {
        budget.reserve(bytes, what);
        Path file = directory.resolve("region-" + nextId.incrementAndGet() + ".bin");
        try {
            OpenOption[] options = direct
                    ? new OpenOption[] {StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                            StandardOpenOption.WRITE, ExtendedOpenOption.DIRECT}
                    : new OpenOption[] {StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                            StandardOpenOption.WRITE};
            return new Region(file, FileChannel.open(file, options), bytes);
        } catch (IOException e) {
            budget.release(bytes);
            throw new UncheckedIOException("cannot create " + file + " for " + what, e);
        }
    }

    public long used() {
        return budget.used();
    }

    public long peak() {
        return budget.peak();
    }

    public long budget() {
        return budget.budget();
    }

    public long bytesRead() {
        return bytesRead.get();
    }

    public long bytesWritten() {
        return bytesWritten.get();
    }

    /**
     * The read bandwidth this tier delivered so far: bytes of reads of {@link #LARGE_READ} or more over the wall time
     * during which at least one such read was in progress, in bytes per second; 0 before any. Unlike a profile taken
     * beforehand it sees the disk in the state it was in while the engine ran (on the build VM the same disk read at
     * 0.5 or 2.5 GB/s minutes apart).
     */
    public double largeReadRate() {
        double seconds = largeReadSeconds();
        return seconds == 0 ? 0 : largeReads.bytes() / seconds;
    }

    /**
     * Wall seconds during which at least one read or write of this tier was in progress. Set beside a run's time it
     * says whether the run was disk bound: the cost model overlaps disk traffic with compute, so a run whose disk
     * was busy for less than its compute should not wait for it.
     */
    public double busySeconds() {
        return anyIo.busyNanos(System.nanoTime()) / 1e9;
    }

    /** Wall seconds during which at least one read of {@link #LARGE_READ} or more was in progress. */
    public double largeReadSeconds() {
        return largeReads.busyNanos(System.nanoTime()) / 1e9;
    }

    /** Bytes read by reads of {@link #LARGE_READ} or more. */
    public long largeReadBytes() {
        return largeReads.bytes();
    }

    @Override
    public void close() {
        // Regions delete their own files when closed; only the reader threads belong to the tier itself.
        readers.shutdownNow();
    }

    /**
     * Receives the bytes of a read chunk by chunk, possibly on several reader threads at once (chunks are disjoint).
     * {@code at} is the chunk's offset from the start of the requested range.
     */
    @FunctionalInterface
    public interface ChunkSink {
        void accept(MemorySegment src, long srcOffset, long at, long length);
    }

    /** A piece of a chunked read: file position, offset from the start of the request, length. */
    @FunctionalInterface
    private interface ChunkRead {
        void run(long pos, long at, long length);
    }

    /**
     * A file of the disk tier. Reads run concurrently (positional reads share no file position); a write excludes
     * them, since it may read-modify-write blocks at its edges.
     */
    public final class Region implements AutoCloseable {
        private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
        private final Path file;
        private final FileChannel channel;
        private final long bytes;
        private volatile boolean closed;

        private Region(Path file, FileChannel channel, long bytes) {
            this.file = file;
            this.channel = channel;
            this.bytes = bytes;
        }

        public long bytes() {
            return bytes;
        }

        /** Copies {@code length} bytes at {@code offset} of this region into {@code dst} at {@code dstOffset}. */
        public void read(long offset, MemorySegment dst, long dstOffset, long length) {
            check(offset, length);
            timed(length, () -> inChunks(offset, length, (pos, at, n) -> readInto(pos, dst, dstOffset + at, n)));
            bytesRead.addAndGet(length);
        }

        /**
         * Reads {@code length} bytes at {@code offset} and hands them to {@code sink} chunk by chunk, from staging
         * memory, so that a caller can transform them (widen fp16) on the way instead of copying them twice.
         */
        public void read(long offset, long length, ChunkSink sink) {
            check(offset, length);
            timed(length, () -> inChunks(offset, length, (pos, at, n) -> readStaged(pos, n,
                    (src, srcOffset, done, m) -> sink.accept(src, srcOffset, at + done, m))));
            bytesRead.addAndGet(length);
        }

        /** Runs a read of {@code length} bytes on the busy clock, and on the large-read clock when it is one. */
        private void timed(long length, Runnable read) {
            boolean large = length >= LARGE_READ;
            long begin = System.nanoTime();
            anyIo.begin(begin);
            if (large) {
                largeReads.begin(begin);
            }
            long moved = 0;
            try {
                read.run();
                moved = length;
            } finally {
                long end = System.nanoTime();
                anyIo.end(end, moved);
                if (large) {
                    largeReads.end(end, moved);
                }
            }
        }

        /**
         * Several reads at once: {@code lengths[i]} bytes at {@code offsets[i]} of this region into {@code dst} at
         * {@code dstOffsets[i]}. Their pieces all go to the reader pool together, so that many small requests (the
         * cache rows of a batch's sequences) are in flight at the same time instead of waiting one after another.
         * Reader threads write into {@code dst}, so it must not be confined to the calling thread.
         */
        public void readAll(long[] offsets, MemorySegment dst, long[] dstOffsets, long[] lengths) {
            List<Runnable> pieces = new ArrayList<>();
            long total = 0;
            for (int i = 0; i < offsets.length; i++) {
                check(offsets[i], lengths[i]);
                long dstOffset = dstOffsets[i];
                addPieces(offsets[i], lengths[i], (pos, at, n) -> readInto(pos, dst, dstOffset + at, n), pieces);
                total += lengths[i];
            }
            anyIo.begin(System.nanoTime());
            long moved = 0;
            try {
                runAll(pieces);
                moved = total;
            } finally {
                anyIo.end(System.nanoTime(), moved);
            }
            bytesRead.addAndGet(total);
        }

        /** Splits [offset, offset + length) at multiples of CHUNK and runs the pieces on the reader pool. */
        private void inChunks(long offset, long length, ChunkRead piece) {
            List<Runnable> pieces = new ArrayList<>();
            addPieces(offset, length, piece, pieces);
            runAll(pieces);
        }

        /** The pieces of [offset, offset + length) cut at multiples of CHUNK, as tasks. */
        private static void addPieces(long offset, long length, ChunkRead piece, List<Runnable> pieces) {
            long end = offset + length;
            for (long pos = offset; pos < end; ) {
                long next = Math.min(end, (pos / CHUNK + 1) * CHUNK);
                long from = pos;
                pieces.add(() -> piece.run(from, from - offset, next - from));
                pos = next;
            }
        }

        /** Runs the pieces: one on the calling thread, several on the reader pool, waiting for all of them. */
        private void runAll(List<Runnable> pieces) {
            if (pieces.size() <= 1) {
                pieces.forEach(Runnable::run);
                return;
            }
            List<Future<?>> pending = new ArrayList<>();
            for (Runnable piece : pieces) {
                pending.add(readers.submit(piece));
            }
            RuntimeException failure = null;
            for (Future<?> f : pending) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    failure = failure != null ? failure : e.getCause() instanceof RuntimeException r ? r
                            : new IllegalStateException("disk tier read of " + file + " failed", e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    failure = failure != null ? failure : new IllegalStateException("interrupted reading " + file, e);
                }
            }
            if (failure != null) {
                throw failure;
            }
        }

        /**
         * One chunk into {@code dst}: when the file offset and the memory address have the same block phase, the
         * whole blocks come straight from the disk (no copy) and only the partial blocks at either end go through
         * staging; otherwise everything goes through staging.
         */
        private void readInto(long pos, MemorySegment dst, long dstOffset, long length) {
            lock.readLock().lock();
            try {
                long head = (BLOCK - pos % BLOCK) % BLOCK;
                boolean samePhase = (dst.address() + dstOffset - pos) % BLOCK == 0;
                long whole = samePhase ? (length - Math.min(head, length)) / BLOCK * BLOCK : 0;
                if (!direct || whole == 0) {
                    readStagedLocked(pos, length, copyTo(dst, dstOffset));
                    return;
                }
                if (head > 0) {
                    readStagedLocked(pos, head, copyTo(dst, dstOffset));
                }
                readFully(dst.asSlice(dstOffset + head, whole).asByteBuffer(), pos + head);
                long tail = length - head - whole;
                if (tail > 0) {
                    readStagedLocked(pos + head + whole, tail, copyTo(dst, dstOffset + head + whole));
                }
            } catch (IOException e) {
                throw new UncheckedIOException("disk tier read of " + file + " failed", e);
            } finally {
                lock.readLock().unlock();
            }
        }

        private static ChunkSink copyTo(MemorySegment dst, long dstOffset) {
            return (src, srcOffset, at, n) -> MemorySegment.copy(src, srcOffset, dst, dstOffset + at, n);
        }

        private void readStaged(long pos, long length, ChunkSink sink) {
            lock.readLock().lock();
            try {
                readStagedLocked(pos, length, sink);
            } catch (IOException e) {
                throw new UncheckedIOException("disk tier read of " + file + " failed", e);
            } finally {
                lock.readLock().unlock();
            }
        }

        private void readStagedLocked(long offset, long length, ChunkSink sink) throws IOException {
            MemorySegment staging = STAGING.get();
            long done = 0;
            while (done < length) {
                long pos = offset + done;
                long start = pos - pos % BLOCK;
                long chunk = Math.min(length - done, STAGING_BYTES - (pos - start));
                long span = roundUp(pos - start + chunk);
                readFully(staging.asSlice(0, span).asByteBuffer(), start);
                sink.accept(staging, pos - start, done, chunk);
                done += chunk;
            }
        }

        /** Writes {@code length} bytes of {@code src} from {@code srcOffset} at {@code offset} of this region. */
        public void write(long offset, MemorySegment src, long srcOffset, long length) {
            check(offset, length);
            anyIo.begin(System.nanoTime());
            try {
                writeLocked(offset, src, srcOffset, length);
            } finally {
                anyIo.end(System.nanoTime(), length);
            }
        }

        private void writeLocked(long offset, MemorySegment src, long srcOffset, long length) {
            MemorySegment staging = STAGING.get();
            long done = 0;
            // Exclusive: a write may read-modify-write its edge blocks, which concurrent reads must not observe.
            lock.writeLock().lock();
            try {
                while (done < length) {
                    long pos = offset + done;
                    long start = pos - pos % BLOCK;
                    long chunk = Math.min(length - done, STAGING_BYTES - (pos - start));
                    long span = roundUp(pos - start + chunk);
                    // Edge blocks the write covers only in part keep their other bytes.
                    if (pos != start) {
                        readFully(staging.asSlice(0, BLOCK).asByteBuffer(), start);
                    }
                    if ((pos + chunk) % BLOCK != 0) {
                        readFully(staging.asSlice(span - BLOCK, BLOCK).asByteBuffer(), start + span - BLOCK);
                    }
                    MemorySegment.copy(src, srcOffset + done, staging, pos - start, chunk);
                    ByteBuffer out = staging.asSlice(0, span).asByteBuffer();
                    while (out.hasRemaining()) {
                        channel.write(out, start + out.position());
                    }
                    done += chunk;
                }
            } catch (IOException e) {
                throw new UncheckedIOException("disk tier write of " + file + " failed", e);
            } finally {
                lock.writeLock().unlock();
            }
            bytesWritten.addAndGet(length);
        }

        /** Reads a span; past the end of the file (never written yet) the bytes read as zero. */
        private void readFully(ByteBuffer buffer, long position) throws IOException {
            while (buffer.hasRemaining()) {
                int n = channel.read(buffer, position + buffer.position());
                if (n < 0) {
                    while (buffer.hasRemaining()) {
                        buffer.put((byte) 0);
                    }
                }
            }
        }

        private void check(long offset, long length) {
            if (closed) {
                throw new IllegalStateException("region " + file + " is closed");
            }
            if (offset < 0 || length < 0 || offset + length > bytes) {
                throw new IndexOutOfBoundsException("range [" + offset + ", " + (offset + length) + ") outside region "
                        + file + " of " + bytes + " bytes");
            }
        }

        @Override
        public void close() {
            lock.writeLock().lock();
            try {
                if (closed) {
                    return;
                }
                closed = true;
            } finally {
                lock.writeLock().unlock();
            }
            budget.release(bytes);
            try {
                channel.close();
                Files.deleteIfExists(file);
            } catch (IOException e) {
                LOG.warn("could not delete spill file {}: {}", file, e.getMessage());
            }
        }
    }

    private static long roundUp(long n) {
        return (n + BLOCK - 1) / BLOCK * BLOCK;
    }
}
