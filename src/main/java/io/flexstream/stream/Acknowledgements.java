package io.flexstream.stream;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Consumer;

/**
 * The hand-over from the producer's callback thread and the engine thread to the poll thread: which records are
 * finished with. Only the poll thread reads it (and only the poll thread touches offsets), so the callbacks never
 * block and never race on an {@link OffsetTracker}.
 */
public final class Acknowledgements {

    /** What happened to a record. */
    public enum Kind {
        /** Its completion or dead letter was acknowledged by the broker: the offset is done. */
        PUBLISHED,
        /** Publishing failed for good (the producer gave up): the offset stays pending, a restart re-reads it. */
        FAILED,
        /** Dropped unprocessed (its partition was revoked or lost, or the node is stopping): not done. */
        ABANDONED
    }

    /** One finished record. */
    public record Ack(RecordOrigin origin, Kind kind) {
    }

    private final ConcurrentLinkedQueue<Ack> queue = new ConcurrentLinkedQueue<>();

    public void add(RecordOrigin origin, Kind kind) {
        queue.add(new Ack(origin, kind));
    }

    /** Hands every queued acknowledgement to {@code sink}, oldest first; returns how many. */
    public int drain(Consumer<Ack> sink) {
        int n = 0;
        for (Ack ack; (ack = queue.poll()) != null; n++) {
            sink.accept(ack);
        }
        return n;
    }
}
