package io.flexstream.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * A record of the schedule's operations, in the order they started or finished, for tests that check the schedule's
 * invariants (each layer's weights loaded once per token step, no cache read before it was written, at most two
 * layers' weights resident).
 */
public final class ScheduleTrace {

    /** The operations of FlexGen's schedule, plus the end of a weight load (when its buffer becomes resident). */
    public enum Op {
        LOAD_WEIGHT_START, LOAD_WEIGHT_DONE, RELEASE_WEIGHT, LOAD_CACHE, STORE_CACHE, LOAD_HIDDEN, STORE_HIDDEN, COMPUTE
    }

    /** One operation on (token step, schedule layer, GPU batch); batch is -1 for weight operations. */
    public record Event(Op op, int token, int layer, int batch) {
    }

    private final List<Event> events = new ArrayList<>();

    synchronized void record(Op op, int token, int layer, int batch) {
        events.add(new Event(op, token, layer, batch));
    }

    public synchronized List<Event> events() {
        return List.copyOf(events);
    }
}
