package io.flexstream.view;

import io.flexstream.stream.avro.Completion;
import io.flexstream.stream.avro.DeadLetter;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;

import java.time.Duration;
import java.time.Instant;

/**
 * The view's topology:
 * <pre>
 * completions ─▶ drop undecodable ─▶ DedupProcessor (store completions-by-id) ─▶ &lt;topic&gt;.dedup (compacted)
 *                                          └─▶ group by model ─▶ window ─▶ WindowStats (store completion-stats) ─▶ stats
 * dead letters ─▶ group by reason ─▶ window ─▶ count (store dead-letter-stats) ───────────────────────────────▶ stats
 * </pre>
 * Statistics count deduplicated completions only, so a redelivered block does not inflate throughput. Windows are in
 * event time: a completion's record timestamp is when its node produced it, a dead letter's when it was sent.
 *
 * <p>Stats-topic records are keyed {@code completions/<model>@<window start ISO>} or
 * {@code dead_letters/<reason>@<window start ISO>} and updated as a window fills, so a compacted stats topic keeps the
 * final value of each window.
 */
public final class ViewTopology {

    /** Late records are still counted this long after their window ends. */
    static final Duration GRACE = Duration.ofMinutes(2);
    /** How long windows stay queryable through {@code GET /stats}. */
    static final Duration RETENTION = Duration.ofHours(2);

    private ViewTopology() {
    }

    public static Topology build(ViewOptions options) {
        Serde<Completion> completions = ViewSerdes.completions();
        Serde<WindowStats> statsSerde = ViewSerdes.json(WindowStats.class);
        TimeWindows windows = TimeWindows.ofSizeAndGrace(options.window(), GRACE);
        Duration retention = RETENTION.compareTo(options.window().plus(GRACE)) > 0 ? RETENTION
                : options.window().plus(GRACE);

        StreamsBuilder builder = new StreamsBuilder();
        builder.addStateStore(Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(ViewOptions.DEDUP_STORE), Serdes.String(), completions));

        KStream<String, Completion> firsts = builder
                .stream(options.completionsTopic(), Consumed.with(Serdes.String(), completions))
                .filter((id, c) -> id != null && c != null)
                .process(() -> new DedupProcessor(ViewOptions.DEDUP_STORE), ViewOptions.DEDUP_STORE);
        firsts.to(options.dedupTopic(), Produced.with(Serdes.String(), completions));

        firsts.groupBy((id, c) -> c.getModel(), Grouped.with("by-model", Serdes.String(), completions))
                .windowedBy(windows)
                .aggregate(WindowStats::empty, (model, c, stats) -> stats.add(c),
                        Materialized.<String, WindowStats, WindowStore<Bytes, byte[]>>as(ViewOptions.STATS_STORE)
                                .withKeySerde(Serdes.String()).withValueSerde(statsSerde).withRetention(retention))
                .toStream()
                .map((w, stats) -> KeyValue.pair(statsKey("completions", w.key(), w.window().start()),
                        stats.toJson(w.key(), w.window().start(), w.window().end()).toString()))
                .to(options.statsTopic(), Produced.with(Serdes.String(), Serdes.String()));

        if (options.deadLetterTopic() != null) {
            Serde<DeadLetter> letters = ViewSerdes.deadLetters();
            builder.stream(options.deadLetterTopic(), Consumed.with(Serdes.ByteArray(), letters))
                    .filter((key, d) -> d != null)
                    .groupBy((key, d) -> d.getReason(), Grouped.with("by-reason", Serdes.String(), letters))
                    .windowedBy(windows)
                    .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as(ViewOptions.DEAD_LETTER_STORE)
                            .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()).withRetention(retention))
                    .toStream()
                    .map((w, count) -> KeyValue.pair(statsKey("dead_letters", w.key(), w.window().start()),
                            deadLetterJson(w.key(), w.window().start(), w.window().end(), count)))
                    .to(options.statsTopic(), Produced.with(Serdes.String(), Serdes.String()));
        }
        return builder.build();
    }

    static String statsKey(String kind, String name, long windowStartMs) {
        return kind + "/" + name + "@" + Instant.ofEpochMilli(windowStartMs);
    }

    static String deadLetterJson(String reason, long startMs, long endMs, long count) {
        return ViewSerdes.JSON.createObjectNode().put("kind", "dead_letters").put("reason", reason)
                .put("window_start", startMs).put("window_end", endMs).put("count", count).toString();
    }
}
