package io.flexstream.tier;

/**
 * Wall time during which at least one operation was in progress: the union of the operations' intervals, so that
 * reads overlapping in time (the weight prefetch and a cache read, or the chunks of one read) count once. Bytes moved
 * divided by this time is the rate a link actually delivered while it was in use, which is what a cost model's
 * bandwidth stands for.
 */
final class BusyClock {

    private int inFlight;
    private long since;
    private long busyNanos;
    private long bytes;

    /** An operation begins at {@code nowNanos}. */
    synchronized void begin(long nowNanos) {
        if (inFlight++ == 0) {
            since = nowNanos;
        }
    }

    /** An operation that moved {@code movedBytes} ends at {@code nowNanos}. */
    synchronized void end(long nowNanos, long movedBytes) {
        if (inFlight <= 0) {
            throw new IllegalStateException("end without begin");
        }
        bytes += movedBytes;
        if (--inFlight == 0) {
            busyNanos += nowNanos - since;
        }
    }

    /** Busy nanoseconds so far, the interval still open included. */
    synchronized long busyNanos(long nowNanos) {
        return busyNanos + (inFlight > 0 ? nowNanos - since : 0);
    }

    synchronized long bytes() {
        return bytes;
    }
}
