package io.flexstream.tier;

/** Bytes in use against a hard budget, with the peak, for one tier. Thread-safe: I/O threads allocate too. */
final class ByteBudget {

    private final TierKind tier;
    private final long budget;
    private long used;
    private long peak;

    ByteBudget(TierKind tier, long budget) {
        if (budget < 0) {
            throw new IllegalArgumentException(tier + " budget must not be negative, got " + budget);
        }
        this.tier = tier;
        this.budget = budget;
    }

    synchronized void reserve(long bytes, String what) {
        if (used + bytes > budget) {
            throw new TierBudgetExceededException(tier, what, bytes, used, budget);
        }
        used += bytes;
        peak = Math.max(peak, used);
    }

    synchronized void release(long bytes) {
        used -= bytes;
        if (used < 0) {
            throw new IllegalStateException(tier + " tier released more bytes than it held");
        }
    }

    synchronized long used() {
        return used;
    }

    synchronized long peak() {
        return peak;
    }

    long budget() {
        return budget;
    }
}
