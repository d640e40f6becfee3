package io.flexstream.stream;

import java.util.OptionalLong;
import java.util.TreeSet;

/**
 * Offset bookkeeping of one partition this node owns, used by the poll thread only.
 *
 * <p>Every offset handed on for processing is <em>pending</em> until its completion or dead letter is acknowledged by
 * the broker; then it is <em>done</em>. Offsets finish in any order (batches group prompts by length, not by offset),
 * so the committable position is the lowest pending offset, or one past the highest tracked offset when nothing is
 * pending. Kafka's committed offset means "the next record to read", so that position is exactly what to commit:
 * everything below it is done, and a restart re-reads the first unfinished record and everything after it.
 *
 * <p>Invariants: offsets are tracked in increasing order (Kafka delivers a partition in order; a re-read after a seek
 * is ignored if already tracked); {@link #committable()} never goes backwards; an offset never tracked cannot be
 * finished. Gaps (compacted or transactional topics) are fine: the position jumps over them.
 */
public final class OffsetTracker {

    private final TreeSet<Long> pending = new TreeSet<>();
    private long nextOffset = -1;       // one past the highest tracked offset; -1 until the first track
    private long lastSent = -1;         // the position last handed to a commit (the first offset read, initially)
    private long confirmed = -1;        // the highest position the broker confirmed

    /** A record at {@code offset} was handed on; returns false (and ignores it) for an offset tracked before. */
    public boolean track(long offset) {
        if (offset < nextOffset) {
            return false;
        }
        if (nextOffset < 0) {
            lastSent = offset;          // the group's position already; nothing to commit until it moves
            confirmed = offset;
        }
        pending.add(offset);
        nextOffset = offset + 1;
        return true;
    }

    /** The completion or dead letter of {@code offset} was acknowledged; returns false for an unknown offset. */
    public boolean finish(long offset) {
        return pending.remove(offset);
    }

    /** The position to commit: lowest pending offset, else one past the highest tracked; empty before any track. */
    public OptionalLong committable() {
        if (nextOffset < 0) {
            return OptionalLong.empty();
        }
        return OptionalLong.of(pending.isEmpty() ? nextOffset : pending.first());
    }

    /** The committable position if it moved since the last commit sent (and not failed), else empty. */
    public OptionalLong uncommitted() {
        OptionalLong position = committable();
        return position.isPresent() && position.getAsLong() > lastSent ? position : OptionalLong.empty();
    }

    /** {@code position} was sent in a commit; until it fails, {@link #uncommitted()} will not offer it again. */
    public void commitSent(long position) {
        lastSent = Math.max(lastSent, position);
    }

    /** The broker confirmed a commit of {@code position}. */
    public void commitConfirmed(long position) {
        confirmed = Math.max(confirmed, position);
    }

    /**
     * A commit of {@code position} failed: offer the position again, unless a later commit was sent since. Without
     * this, a failed commit of the final position (e.g. during a rebalance) would never be retried, because the
     * position no longer moves.
     */
    public void commitFailed(long position) {
        if (lastSent == position) {
            lastSent = confirmed;
        }
    }

    /** The highest position the broker confirmed as committed, -1 if none. */
    public long confirmed() {
        return confirmed;
    }

    public int pendingCount() {
        return pending.size();
    }

    /** One past the highest offset seen, or -1: with {@link #committable()}, the lag inside this node. */
    public long nextOffset() {
        return nextOffset;
    }
}
