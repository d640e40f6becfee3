package io.flexstream.tier;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The device or host tier on the CPU backend: off-heap memory with a hard byte budget. Every buffer has its own
 * shared arena, so it can be freed on its own and read by any compute or I/O thread.
 */
public final class MemoryTier implements AutoCloseable {

    /** Alignment of every buffer: a cache line, and a disk block so that O_DIRECT can read straight into it. */
    public static final long ALIGNMENT = 4096;

    private final TierKind kind;
    private final ByteBudget budget;

    public MemoryTier(TierKind kind, long budgetBytes) {
        if (kind == TierKind.DISK) {
            throw new IllegalArgumentException("the disk tier is a DiskTier, not a MemoryTier");
        }
        this.kind = kind;
        this.budget = new ByteBudget(kind, budgetBytes);
    }

    /** A zeroed buffer of {@code bytes}, charged to this tier until closed. */
    public Buffer allocate(long bytes, String what) {
        budget.reserve(bytes, what);
        Arena arena = Arena.ofShared();
        try {
            return new Buffer(arena.allocate(Math.max(bytes, 1), ALIGNMENT), bytes, arena);
        } catch (OutOfMemoryError | RuntimeException e) {
            arena.close();
            budget.release(bytes);
            throw e;
        }
    }

    public TierKind kind() {
        return kind;
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

    @Override
    public void close() {
        // Buffers are closed by their owners; nothing is pooled here.
    }

    /** One allocation of this tier. */
    public final class Buffer implements AutoCloseable {
        private final MemorySegment segment;
        private final long bytes;
        private final Arena arena;
        private boolean closed;

        private Buffer(MemorySegment segment, long bytes, Arena arena) {
            this.segment = segment.asSlice(0, bytes);
            this.bytes = bytes;
            this.arena = arena;
        }

        public MemorySegment segment() {
            return segment;
        }

        public long bytes() {
            return bytes;
        }

        public TierKind tier() {
            return kind;
        }

        @Override
        public synchronized void close() {
            if (!closed) {
                closed = true;
                arena.close();
                budget.release(bytes);
            }
        }
    }
}
