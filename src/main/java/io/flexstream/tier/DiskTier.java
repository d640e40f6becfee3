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
import java.util.concurrent.atomic.AtomicLong;

/**
 * The disk tier: each allocation is a file in a spill directory, read and written with O_DIRECT when the file system
 * allows it, so that a benchmark measures the disk and not the page cache. O_DIRECT needs the file offset, the length
 * and the memory address aligned to the device block; callers may use any offset and length, and this class goes
 * through per-thread aligned staging buffers (a memory copy costs about a twentieth of the disk read it rides on),
 * reading the edge blocks first when a write does not cover them whole.
 */
public final class DiskTier implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(DiskTier.class);
    static final int BLOCK = 4096;
    private static final int STAGING_BYTES = 8 << 20;
    private static final ThreadLocal<MemorySegment> STAGING =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(STAGING_BYTES, BLOCK));

    private final Path directory;
    private final ByteBudget budget;
    private final boolean direct;
    private final AtomicLong nextId = new AtomicLong();
    private final AtomicLong bytesRead = new AtomicLong();
    private final AtomicLong bytesWritten = new AtomicLong();

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

    @Override
    public void close() {
        // Regions delete their own files when closed.
    }

    /** A file of the disk tier. Operations on one region are serialised (writes may read-modify-write blocks). */
    public final class Region implements AutoCloseable {
        private final Path file;
        private final FileChannel channel;
        private final long bytes;
        private boolean closed;

        private Region(Path file, FileChannel channel, long bytes) {
            this.file = file;
            this.channel = channel;
            this.bytes = bytes;
        }

        public long bytes() {
            return bytes;
        }

        /** Copies {@code length} bytes at {@code offset} of this region into {@code dst} at {@code dstOffset}. */
        public synchronized void read(long offset, MemorySegment dst, long dstOffset, long length) {
            check(offset, length);
            MemorySegment staging = STAGING.get();
            long done = 0;
            try {
                while (done < length) {
                    long pos = offset + done;
                    long start = pos - pos % BLOCK;
                    long chunk = Math.min(length - done, STAGING_BYTES - (pos - start));
                    long span = roundUp(pos - start + chunk);
                    readFully(staging.asSlice(0, span).asByteBuffer(), start);
                    MemorySegment.copy(staging, pos - start, dst, dstOffset + done, chunk);
                    done += chunk;
                }
            } catch (IOException e) {
                throw new UncheckedIOException("disk tier read of " + file + " failed", e);
            }
            bytesRead.addAndGet(length);
        }

        /** Writes {@code length} bytes of {@code src} from {@code srcOffset} at {@code offset} of this region. */
        public synchronized void write(long offset, MemorySegment src, long srcOffset, long length) {
            check(offset, length);
            MemorySegment staging = STAGING.get();
            long done = 0;
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
        public synchronized void close() {
            if (closed) {
                return;
            }
            closed = true;
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
