package io.flexstream.stream;

import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InterruptException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * The poll thread: the only thread that touches the {@link Consumer} and the only one that commits.
 *
 * <p><b>Membership.</b> It calls {@code poll} every {@code poll.timeout.ms} whatever the engine is doing, so a block
 * longer than {@code max.poll.interval.ms} never costs the group membership. Back-pressure is by {@code pause}: when
 * the records outstanding (handed on and not yet acknowledged) reach {@code max.buffered}, every assigned partition is
 * paused and polls return nothing but keep the member alive; when room frees, they resume.
 *
 * <p><b>Offsets.</b> Each owned partition has an {@link OffsetTracker}. A record is tracked when polled and finished
 * when its completion or dead letter is acknowledged ({@link Acknowledgements}, drained here). Commits: every
 * {@code commit.interval.ms} an async commit of the positions that moved; a sync commit of the revoked partitions on
 * revoke and of everything on close.
 *
 * <p><b>Ownership epochs.</b> On every assignment this node draws a new epoch from a counter and stamps it on the
 * partitions it gained; each record carries the epoch of its partition at poll time ({@link RecordOrigin#epoch()}).
 * On revoke the node commits what is done for those partitions, then forgets them; on loss it forgets them without
 * committing. An acknowledgement whose epoch is not the partition's current one belongs to an earlier ownership and is
 * ignored: its completion was published, but this node never commits its offset, because another member may own the
 * partition now. (A commit failure is not a reliable signal: with KIP-848 a late commit may still succeed.)
 *
 * <p><b>Shutdown.</b> {@link #requestStop()}: stop taking records (pause everything), let the engine finish its block
 * within {@code shutdown.timeout.ms} while polling on, drain acknowledgements, commit synchronously, close.
 */
public final class PollLoop implements Runnable {

    private static final Logger LOG = LoggerFactory.getLogger(PollLoop.class);

    /** The engine side, as the poll thread sees it. */
    public interface Engine {
        void submit(PromptRecord record);

        void stop();

        /** Waits up to {@code millis} for the engine thread to end; true when it has. */
        boolean await(long millis) throws InterruptedException;

        boolean isRunning();
    }

    private final Consumer<byte[], byte[]> consumer;
    private final StreamConfig config;
    private final PromptDecoder decoder;
    private final DeadLetters deadLetters;
    private final Acknowledgements acks;
    private final Engine engine;
    private final BooleanSupplier flushProducer;
    private final StreamMetrics metrics;

    private final Map<TopicPartition, OffsetTracker> trackers = new HashMap<>();
    private final ConcurrentHashMap<TopicPartition, Long> epochs = new ConcurrentHashMap<>();
    private long epochCounter;
    private int outstanding;
    private boolean paused;
    private long lastCommitNanos = System.nanoTime();
    private volatile boolean stopRequested;
    private volatile long lastTurnNanos = System.nanoTime();
    private volatile boolean joined;

    private final AtomicLong polled = new AtomicLong();
    private final AtomicLong commits = new AtomicLong();
    private final AtomicLong commitFailures = new AtomicLong();
    private final AtomicLong rebalances = new AtomicLong();

    /**
     * @param flushProducer blocks until every sent record is acknowledged or failed (true on success)
     */
    public PollLoop(Consumer<byte[], byte[]> consumer, StreamConfig config, PromptDecoder decoder,
                    DeadLetters deadLetters, Acknowledgements acks, Engine engine, BooleanSupplier flushProducer) {
        this(consumer, config, decoder, deadLetters, acks, engine, flushProducer, StreamMetrics.NONE);
    }

    public PollLoop(Consumer<byte[], byte[]> consumer, StreamConfig config, PromptDecoder decoder,
                    DeadLetters deadLetters, Acknowledgements acks, Engine engine, BooleanSupplier flushProducer,
                    StreamMetrics metrics) {
        this.metrics = metrics;
        this.consumer = consumer;
        this.config = config;
        this.decoder = decoder;
        this.deadLetters = deadLetters;
        this.acks = acks;
        this.engine = engine;
        this.flushProducer = flushProducer;
    }

    /** Whether {@code origin}'s partition is still owned under the epoch it was read with; any thread. */
    public boolean isCurrent(RecordOrigin origin) {
        Long epoch = epochs.get(origin.partition());
        return epoch != null && epoch == origin.epoch();
    }

    public void requestStop() {
        stopRequested = true;
    }

    @Override
    public void run() {
        consumer.subscribe(List.of(config.inputTopic()), new Rebalances());
        try {
            while (!stopRequested) {
                if (!engine.isRunning()) {
                    LOG.error("the engine thread ended unexpectedly; stopping without committing unfinished records");
                    break;
                }
                try {
                    step();
                } catch (RuntimeException e) {
                    // Nothing but a stop request ends the loop (a bug here must not silently stall the group).
                    LOG.error("unexpected error in the poll loop; continuing", e);
                    sleepQuietly(1_000);
                }
            }
            shutdown();
        } finally {
            consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(Duration.ofSeconds(10)));
            LOG.info("consumer closed: {} records polled, {} commits ({} failed), {} rebalances", polled.get(),
                    commits.get(), commitFailures.get(), rebalances.get());
        }
    }

    /** One turn: apply acknowledgements, pause or resume, poll, hand records on, commit if due. */
    void step() {
        lastTurnNanos = System.nanoTime();
        drainAcks();
        applyBackPressure(false);
        ConsumerRecords<byte[], byte[]> records;
        try {
            records = consumer.poll(Duration.ofMillis(config.pollTimeoutMs()));
        } catch (InterruptException e) {
            stopRequested = true;
            return;
        } catch (KafkaException e) {
            // Nothing but a stop request ends the loop: log, back off, poll again.
            LOG.error("poll failed, retrying in 1 s: {}", e.toString());
            sleepQuietly(1_000);
            return;
        }
        for (ConsumerRecord<byte[], byte[]> record : records) {
            handOn(record);
        }
        metrics.pollState(outstanding, paused ? consumer.paused().size() : 0);
        if (System.nanoTime() - lastCommitNanos >= config.commitIntervalMs() * 1_000_000) {
            commitAsync();
            metrics.offsets(offsetSnapshot());
        }
    }

    private void handOn(ConsumerRecord<byte[], byte[]> record) {
        TopicPartition tp = new TopicPartition(record.topic(), record.partition());
        OffsetTracker tracker = trackers.get(tp);
        Long epoch = epochs.get(tp);
        if (tracker == null || epoch == null || !tracker.track(record.offset())) {
            return;     // not ours (any more), or seen before in this ownership
        }
        polled.incrementAndGet();
        outstanding++;
        RecordOrigin origin = new RecordOrigin(tp, record.offset(), epoch);
        try {
            engine.submit(decoder.decode(record, origin));
        } catch (RejectedRecordException e) {
            deadLetters.send(record, origin, null, e.reason(), e);
        } catch (RuntimeException e) {
            deadLetters.send(record, origin, null, DeadLetterReason.UNDECODABLE, e);
        }
    }

    private void drainAcks() {
        acks.drain(ack -> {
            outstanding--;
            if (ack.kind() != Acknowledgements.Kind.PUBLISHED || !isCurrent(ack.origin())) {
                return;
            }
            OffsetTracker tracker = trackers.get(ack.origin().partition());
            if (tracker != null) {
                tracker.finish(ack.origin().offset());
            }
        });
    }

    private void applyBackPressure(boolean stopping) {
        boolean full = stopping || outstanding >= config.maxBuffered();
        if (full) {
            consumer.pause(consumer.assignment());
            if (!paused) {
                LOG.debug("paused {} partitions: {} records outstanding", consumer.assignment().size(), outstanding);
            }
            paused = true;
        } else if (paused) {
            consumer.resume(consumer.paused());
            paused = false;
        }
    }

    private void commitAsync() {
        lastCommitNanos = System.nanoTime();
        Map<TopicPartition, OffsetAndMetadata> offsets = positions(trackers.keySet(), true);
        if (offsets.isEmpty()) {
            return;
        }
        // The callback runs on this thread, inside a later poll or commit, so it may touch the trackers.
        consumer.commitAsync(offsets, (committed, error) -> {
            metrics.commit(error == null);
            if (error == null) {
                commits.incrementAndGet();
                offsets.forEach((tp, om) -> {
                    OffsetTracker tracker = trackers.get(tp);
                    if (tracker != null) {
                        tracker.commitConfirmed(om.offset());
                    }
                });
            } else {
                commitFailures.incrementAndGet();
                offsets.forEach((tp, om) -> {
                    OffsetTracker tracker = trackers.get(tp);
                    if (tracker != null) {
                        tracker.commitFailed(om.offset());
                    }
                });
                if (error instanceof org.apache.kafka.common.errors.RebalanceInProgressException
                        || error instanceof org.apache.kafka.common.errors.RetriableException) {
                    LOG.debug("async commit deferred, will retry: {}", error.toString());   // expected mid-rebalance
                } else {
                    LOG.warn("async commit failed, will retry: {}", error.toString());
                }
            }
        });
        LOG.info("commit {}", describe(offsets));
    }

    private void commitSync(Collection<TopicPartition> partitions, String why) {
        Map<TopicPartition, OffsetAndMetadata> offsets = positions(partitions, false);
        if (offsets.isEmpty()) {
            return;
        }
        try {
            consumer.commitSync(offsets, Duration.ofSeconds(10));
            commits.incrementAndGet();
            metrics.commit(true);
            offsets.forEach((tp, om) -> trackers.get(tp).commitConfirmed(om.offset()));
            LOG.info("commit ({}) {}", why, describe(offsets));
        } catch (KafkaException e) {
            commitFailures.incrementAndGet();
            metrics.commit(false);
            offsets.forEach((tp, om) -> trackers.get(tp).commitFailed(om.offset()));
            LOG.warn("commit ({}) failed; those records will be read again: {}", why, e.toString());
        }
    }

    /** Positions to commit for {@code partitions}; only the ones that moved when {@code onlyMoved}. */
    private Map<TopicPartition, OffsetAndMetadata> positions(Collection<TopicPartition> partitions, boolean onlyMoved) {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (TopicPartition tp : partitions) {
            OffsetTracker tracker = trackers.get(tp);
            if (tracker == null) {
                continue;
            }
            OptionalLong position = onlyMoved ? tracker.uncommitted() : tracker.committable();
            if (position.isPresent()) {
                offsets.put(tp, new OffsetAndMetadata(position.getAsLong()));
                tracker.commitSent(position.getAsLong());
            }
        }
        return offsets;
    }

    private void shutdown() {
        LOG.info("stopping: no new records; finishing the block in flight (up to {} ms)", config.shutdownTimeoutMs());
        applyBackPressure(true);
        engine.stop();
        long deadline = System.nanoTime() + config.shutdownTimeoutMs() * 1_000_000;
        try {
            while (System.nanoTime() < deadline && !engine.await(0)) {
                consumer.poll(Duration.ofMillis(config.pollTimeoutMs()));  // paused: keeps the membership only
                applyBackPressure(true);
                drainAcks();
            }
            if (!engine.await(0)) {
                LOG.warn("the block in flight did not finish within {} ms; abandoning it (it is read again later)",
                        config.shutdownTimeoutMs());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (KafkaException e) {
            LOG.warn("poll during shutdown failed: {}", e.toString());
        }
        flushProducer.getAsBoolean();
        drainAcks();
        commitSync(trackers.keySet(), "close");
        // Committed for good: the revocation inside consumer.close() has nothing left to commit.
        trackers.clear();
        epochs.clear();
    }

    /** Committed and next offset of every owned partition, for {@link StreamMetrics#offsets}. */
    private Map<TopicPartition, StreamMetrics.PartitionOffsets> offsetSnapshot() {
        Map<TopicPartition, StreamMetrics.PartitionOffsets> out = new HashMap<>();
        trackers.forEach((tp, t) -> out.put(tp, new StreamMetrics.PartitionOffsets(t.confirmed(), t.nextOffset())));
        return out;
    }

    /** When the loop last started a turn ({@link System#nanoTime()}); any thread, for the liveness probe. */
    public long lastTurnNanos() {
        return lastTurnNanos;
    }

    /** Whether this member has completed a first rebalance (with or without partitions); any thread. */
    public boolean hasJoinedGroup() {
        return joined;
    }

    private static String describe(Map<TopicPartition, OffsetAndMetadata> offsets) {
        StringBuilder s = new StringBuilder();
        offsets.entrySet().stream().sorted(Map.Entry.comparingByKey(
                        java.util.Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition)))
                .forEach(e -> s.append(s.isEmpty() ? "" : ", ").append(e.getKey().partition()).append('@')
                        .append(e.getValue().offset()));
        return s.toString();
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    public long polledCount() {
        return polled.get();
    }

    public long commitCount() {
        return commits.get();
    }

    public long rebalanceCount() {
        return rebalances.get();
    }

    /** Called inside {@code poll} on this thread. */
    private final class Rebalances implements ConsumerRebalanceListener {

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            joined = true;      // a member with no partitions (more members than partitions) is still in the group
            if (partitions.isEmpty()) {
                return;
            }
            long epoch = ++epochCounter;
            for (TopicPartition tp : partitions) {
                trackers.put(tp, new OffsetTracker());
                epochs.put(tp, epoch);
            }
            if (paused) {
                consumer.pause(partitions);
            }
            rebalances.incrementAndGet();
            metrics.rebalance("assigned", partitions.size());
            metrics.offsets(offsetSnapshot());
            LOG.info("rebalance: assigned {} (epoch {}), now own {} partitions", partitions, epoch, trackers.size());
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            if (partitions.isEmpty()) {
                return;
            }
            drainAcks();
            commitSync(partitions, "revoke");
            forget(partitions);
            rebalances.incrementAndGet();
            metrics.rebalance("revoked", partitions.size());
            metrics.offsets(offsetSnapshot());
            LOG.info("rebalance: revoked {}, now own {} partitions", partitions, trackers.size());
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            if (partitions.isEmpty()) {
                return;
            }
            forget(partitions);
            rebalances.incrementAndGet();
            metrics.rebalance("lost", partitions.size());
            metrics.offsets(offsetSnapshot());
            LOG.warn("rebalance: lost {} without a chance to commit; their unfinished records will be read again",
                    partitions);
        }

        private void forget(Collection<TopicPartition> partitions) {
            for (TopicPartition tp : partitions) {
                trackers.remove(tp);
                epochs.remove(tp);
            }
        }
    }
}
