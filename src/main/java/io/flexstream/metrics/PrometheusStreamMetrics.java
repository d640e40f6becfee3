package io.flexstream.metrics;

import io.flexstream.stream.DeadLetterReason;
import io.flexstream.stream.StreamMetrics;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import org.apache.kafka.common.TopicPartition;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@link StreamMetrics} as Micrometer meters; names below are as Prometheus sees them (all prefixed
 * {@code flexstream_}). Gauges hold the last reported value, so reading them never touches the consumer (which only
 * its poll thread may use).
 *
 * <ul>
 *   <li>{@code records_outstanding}: polled, not yet acknowledged (buffered + in flight);
 *       {@code records_in_flight}: in the running block; {@code records_queued}: waiting in the engine for a block</li>
 *   <li>{@code partitions_paused}; {@code partition_committed_offset} and {@code partition_next_offset}
 *       ({@code topic}, {@code partition}): their difference is the lag inside this node</li>
 *   <li>{@code block_size} (summary of prompts per block), {@code block_fill_ratio} (last block / target size),
 *       {@code block_duration_seconds} (timer with histogram buckets), {@code block_progress_ratio} (decode steps of
 *       the running block), {@code block_tokens_per_second} (last block), {@code generated_tokens_total},
 *       {@code completions_total}</li>
 *   <li>{@code dead_letters_total} ({@code reason}), {@code commits_total}, {@code commit_failures_total},
 *       {@code rebalances_total} ({@code kind}: assigned, revoked, lost)</li>
 *   <li>{@code backend_info} ({@code backend}, {@code model}): constant 1, the engine this node runs</li>
 * </ul>
 * The offloading engine's tier bytes are separate gauges bound by {@link TierGauges}.
 */
public final class PrometheusStreamMetrics implements StreamMetrics {

    private final MeterRegistry registry;
    private final AtomicInteger outstanding = new AtomicInteger();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger queued = new AtomicInteger();
    private final AtomicInteger paused = new AtomicInteger();
    private final AtomicLong fillPermille = new AtomicLong();
    private final AtomicLong progressPermille = new AtomicLong();
    private final AtomicLong tokensPerSecond = new AtomicLong();
    private final DistributionSummary blockSize;
    private final Timer blockDuration;
    private final Counter tokens;
    private final Counter completions;
    private final Counter commits;
    private final Counter commitFailures;
    private final MultiGauge committedOffsets;
    private final MultiGauge nextOffsets;

    public PrometheusStreamMetrics(MeterRegistry registry, String backend, String model) {
        this.registry = registry;
        Gauge.builder("flexstream.records.outstanding", outstanding, AtomicInteger::get)
                .description("records polled and not yet acknowledged (buffered + in flight)").register(registry);
        Gauge.builder("flexstream.records.in.flight", inFlight, AtomicInteger::get)
                .description("records in the running block").register(registry);
        Gauge.builder("flexstream.records.queued", queued, AtomicInteger::get)
                .description("records waiting in the engine for a block").register(registry);
        Gauge.builder("flexstream.partitions.paused", paused, AtomicInteger::get)
                .description("partitions paused for back-pressure").register(registry);
        Gauge.builder("flexstream.block.fill.ratio", fillPermille, v -> v.get() / 1000.0)
                .description("last block's prompts over the batch sizer's target").register(registry);
        Gauge.builder("flexstream.block.progress.ratio", progressPermille, v -> v.get() / 1000.0)
                .description("decode steps done over the most the running block can take").register(registry);
        Gauge.builder("flexstream.block.tokens.per.second", tokensPerSecond, AtomicLong::get)
                .description("new tokens per second of the last block").register(registry);
        Gauge.builder("flexstream.backend.info", () -> 1).tags("backend", backend, "model", model)
                .description("the engine backend and model this node runs").register(registry);
        blockSize = DistributionSummary.builder("flexstream.block.size").baseUnit("prompts")
                .description("prompts per block").register(registry);
        // Blocks take from milliseconds (tiny model, CPU) to many minutes (offloaded 175B), hence the wide range.
        blockDuration = Timer.builder("flexstream.block.duration").description("wall time of one block")
                .publishPercentileHistogram().minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofHours(2)).register(registry);
        tokens = Counter.builder("flexstream.generated.tokens").description("new tokens generated").register(registry);
        completions = Counter.builder("flexstream.completions").description("completions handed to the producer")
                .register(registry);
        commits = Counter.builder("flexstream.commits").description("offset commits confirmed").register(registry);
        commitFailures = Counter.builder("flexstream.commit.failures").description("offset commits failed")
                .register(registry);
        committedOffsets = MultiGauge.builder("flexstream.partition.committed.offset")
                .description("committed position (next offset to read) per owned partition").register(registry);
        nextOffsets = MultiGauge.builder("flexstream.partition.next.offset")
                .description("one past the highest offset this node has read per owned partition").register(registry);
    }

    @Override
    public void pollState(int outstandingRecords, int pausedPartitions) {
        outstanding.set(outstandingRecords);
        paused.set(pausedPartitions);
    }

    @Override
    public void offsets(Map<TopicPartition, PartitionOffsets> owned) {
        List<MultiGauge.Row<?>> committed = new ArrayList<>();
        List<MultiGauge.Row<?>> next = new ArrayList<>();
        owned.forEach((tp, o) -> {
            Tags tags = Tags.of("topic", tp.topic(), "partition", Integer.toString(tp.partition()));
            committed.add(MultiGauge.Row.of(tags, o.committed()));
            next.add(MultiGauge.Row.of(tags, o.next()));
        });
        // overwrite: rows of partitions no longer owned disappear instead of reporting a stale position forever
        committedOffsets.register(committed, true);
        nextOffsets.register(next, true);
    }

    @Override
    public void commit(boolean ok) {
        (ok ? commits : commitFailures).increment();
    }

    @Override
    public void rebalance(String kind, int partitions) {
        registry.counter("flexstream.rebalances", "kind", kind).increment();
    }

    @Override
    public void blockStarted(int size, int target, int queuedPrompts) {
        inFlight.set(size);
        queued.set(queuedPrompts);
        fillPermille.set(Math.round(1000.0 * size / target));
        progressPermille.set(0);
        blockSize.record(size);
    }

    @Override
    public void blockProgress(int step, int maxSteps) {
        progressPermille.set(Math.round(1000.0 * step / Math.max(1, maxSteps)));
    }

    @Override
    public void blockDone(int size, long newTokens, long nanos) {
        inFlight.set(0);
        progressPermille.set(1000);
        blockDuration.record(Duration.ofNanos(nanos));
        tokens.increment(newTokens);
        completions.increment(size);
        tokensPerSecond.set(nanos > 0 ? Math.round(newTokens * 1e9 / nanos) : 0);
    }

    @Override
    public void deadLetter(DeadLetterReason reason) {
        registry.counter("flexstream.dead.letters", "reason", reason.wireName()).increment();
    }
}
