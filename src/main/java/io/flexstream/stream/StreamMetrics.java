package io.flexstream.stream;

import org.apache.kafka.common.TopicPartition;

import java.util.Map;

/**
 * What the poll and engine threads report for monitoring. The stream package only calls this interface; the
 * Prometheus implementation lives in {@code io.flexstream.metrics}, so the consumer itself carries no metrics library
 * and tests pass {@link #NONE}. Implementations must be cheap and thread-safe: calls come from the poll thread (every
 * turn), the engine thread (per block and per decode step) and the producer's callback thread (dead letters).
 */
public interface StreamMetrics {

    StreamMetrics NONE = new StreamMetrics() { };

    /** Committed position (next offset to read, as confirmed by the broker) and one past the highest offset seen. */
    record PartitionOffsets(long committed, long next) {
    }

    /** Poll thread, every turn: records polled and not yet acknowledged, and partitions paused for back-pressure. */
    default void pollState(int outstanding, int pausedPartitions) {
    }

    /** Poll thread: the offsets of every partition owned now (partitions not in the map are no longer owned). */
    default void offsets(Map<TopicPartition, PartitionOffsets> owned) {
    }

    /** Poll thread: a commit was confirmed ({@code ok}) or failed. */
    default void commit(boolean ok) {
    }

    /** Poll thread: partitions were {@code assigned}, {@code revoked} or {@code lost}. */
    default void rebalance(String kind, int partitions) {
    }

    /** Engine thread: a block of {@code size} prompts starts; the batch sizer wanted {@code target}. */
    default void blockStarted(int size, int target, int queued) {
    }

    /** Engine thread: one decode step of the running block ({@code step} of at most {@code maxSteps}). */
    default void blockProgress(int step, int maxSteps) {
    }

    /** Engine thread: the block finished ({@code tokens} new tokens in {@code nanos}), handed to the producer. */
    default void blockDone(int size, long tokens, long nanos) {
    }

    /** Any thread: a dead letter was sent. */
    default void deadLetter(DeadLetterReason reason) {
    }
}
