package io.flexstream.tier;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Iterator;

/**
 * The device or host tier on the CPU backend: off-heap memory with a hard byte budget. Every buffer has its own
 * shared arena, so it can be freed on its own and read by any compute or I/O thread.
 *
 * <p><b>Recycling.</b> A recycling tier keeps the memory of closed buffers and hands it out again, zeroed, for a later
 * request of up to the same size. The offloading engine allocates a block's KV cache, activations and scratch anew
 * for every block; fresh memory costs a page fault per 4 KiB page on first touch, on the 2-core VM about 0.1 s per
 * 320 MiB, while zeroing memory that is already mapped takes a fifth of that. A consumer runs one block after
 * another, mostly of the same shape, so the second block onwards reuses the first one's pages. Kept memory is not
 * charged to the budget (the budget counts what is in use); in-use and kept memory together never exceed the tier's
 * peak use, and {@link #close()} frees what is kept.
 */
public final class MemoryTier implements AutoCloseable {

    /** Alignment of every buffer: a cache line, and a disk block so that O_DIRECT can read straight into it. */
    public static final long ALIGNMENT = 4096;
    /** Buffers under a page are freed, not kept: they cost no page fault of their own. */
    static final long RECYCLE_MIN_BYTES = ALIGNMENT;

    private final TierKind kind;
    private final ByteBudget budget;
    private final boolean recycle;
    /** Memory of closed buffers, oldest first; guarded by this. */
    private final Deque<Kept> kept = new ArrayDeque<>();
    private long keptBytes;

    /** Memory of a closed buffer: its whole segment and the arena that frees it. */
    private record Kept(MemorySegment memory, Arena arena) {
    }

    /** A tier that frees every buffer when it is closed. */
    public MemoryTier(TierKind kind, long budgetBytes) {
        this(kind, budgetBytes, false);
    }

    /** @param recycle whether closed buffers' memory is kept for later requests (see the class comment) */
    public MemoryTier(TierKind kind, long budgetBytes, boolean recycle) {
        if (kind == TierKind.DISK) {
            throw new IllegalArgumentException("the disk tier is a DiskTier, not a MemoryTier");
        }
        this.kind = kind;
        this.budget = new ByteBudget(kind, budgetBytes);
        this.recycle = recycle;
    }

    /** A zeroed buffer of {@code bytes}, charged to this tier until closed. */
    public Buffer allocate(long bytes, String what) {
        budget.reserve(bytes, what);
        Kept reuse = recycle ? takeKept(bytes) : null;
        if (reuse != null) {
            MemorySegment segment = reuse.memory().asSlice(0, bytes);
            segment.fill((byte) 0);
            return new Buffer(segment, reuse.memory(), bytes, reuse.arena());
        }
        if (recycle) {
            freeKeptBeyondPeak();
        }
        Arena arena = Arena.ofShared();
        try {
            MemorySegment memory = arena.allocate(Math.max(bytes, 1), ALIGNMENT);
            return new Buffer(memory.asSlice(0, bytes), memory, bytes, arena);
        } catch (OutOfMemoryError | RuntimeException e) {
            arena.close();
            budget.release(bytes);
            throw e;
        }
    }

    /**
     * The smallest kept memory that holds {@code bytes} without wasting more than as much again, removed from the
     * pool; null when none fits.
     */
    private synchronized Kept takeKept(long bytes) {
        if (bytes < RECYCLE_MIN_BYTES) {
            return null;
        }
        Kept best = null;
        for (Kept k : kept) {
            long size = k.memory().byteSize();
            if (size >= bytes && size <= 2 * bytes && (best == null || size < best.memory().byteSize())) {
                best = k;
            }
        }
        if (best != null) {
            kept.remove(best);
            keptBytes -= best.memory().byteSize();
        }
        return best;
    }

    /** Keeps a closed buffer's memory (its bytes are already released from the budget), or frees it. */
    private void keepOrFree(MemorySegment memory, Arena arena) {
        if (!recycle || memory.byteSize() < RECYCLE_MIN_BYTES) {
            arena.close();
            return;
        }
        synchronized (this) {
            kept.addLast(new Kept(memory, arena));
            keptBytes += memory.byteSize();
        }
        freeKeptBeyondPeak();
    }

    /**
     * Frees kept memory, oldest first, until in-use and kept bytes together are no more than the tier's peak use:
     * recycling never makes the tier hold more memory than it once had in use.
     */
    private synchronized void freeKeptBeyondPeak() {
        for (Iterator<Kept> it = kept.iterator(); keptBytes + budget.used() > budget.peak() && it.hasNext(); ) {
            Kept oldest = it.next();
            it.remove();
            keptBytes -= oldest.memory().byteSize();
            oldest.arena().close();
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

    /** Bytes of closed buffers kept for reuse (not part of {@link #used()}). */
    public synchronized long keptBytes() {
        return keptBytes;
    }

    /** Frees the memory kept for reuse; buffers still open are closed by their owners. */
    @Override
    public synchronized void close() {
        kept.forEach(k -> k.arena().close());
        kept.clear();
        keptBytes = 0;
    }

    /** One allocation of this tier. */
    public final class Buffer implements AutoCloseable {
        private final MemorySegment segment;
        private final MemorySegment memory;
        private final long bytes;
        private final Arena arena;
        private boolean closed;

        private Buffer(MemorySegment segment, MemorySegment memory, long bytes, Arena arena) {
            this.segment = segment;
            this.memory = memory;
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
                budget.release(bytes);
                keepOrFree(memory, arena);
            }
        }
    }
}
