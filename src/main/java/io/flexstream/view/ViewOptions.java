package io.flexstream.view;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * Settings of one view instance.
 *
 * @param bootstrapServers  Kafka bootstrap servers
 * @param completionsTopic  the topic the FlexStream nodes publish completions to
 * @param dedupTopic        compacted topic of first completions per id ({@code <completions>.dedup} by default)
 * @param statsTopic        topic of per-minute statistics ({@code <completions>.stats} by default)
 * @param deadLetterTopic   dead-letter topic to count per reason, or null to skip dead-letter statistics
 * @param applicationId     Kafka Streams application id: instances with the same id share the work
 * @param stateDir          local state directory (RocksDB stores); null for Kafka Streams' default
 * @param advertisedHost    host name other instances use to reach this one's HTTP port (application.server)
 * @param httpPort          HTTP port of the API, health and metrics; 0 picks a free one (tests)
 * @param window            statistics window size (one minute by default)
 * @param streams           extra Kafka Streams settings, passed through unchanged
 */
public record ViewOptions(String bootstrapServers, String completionsTopic, String dedupTopic, String statsTopic,
                          String deadLetterTopic, String applicationId, Path stateDir, String advertisedHost,
                          int httpPort, Duration window, Map<String, String> streams) {

    public static final String DEDUP_STORE = "completions-by-id";
    public static final String STATS_STORE = "completion-stats";
    public static final String DEAD_LETTER_STORE = "dead-letter-stats";

    public ViewOptions {
        streams = Map.copyOf(streams);
        if (window.isNegative() || window.isZero()) {
            throw new IllegalArgumentException("the statistics window must be positive, got " + window);
        }
    }

    /** Defaults for everything but the cluster and the topic. */
    public static ViewOptions defaults(String bootstrapServers, String completionsTopic) {
        return new ViewOptions(bootstrapServers, completionsTopic, completionsTopic + ".dedup",
                completionsTopic + ".stats", null, "flexstream-view", null, "localhost", 8080,
                Duration.ofMinutes(1), Map.of());
    }

    public ViewOptions withDeadLetterTopic(String topic) {
        return new ViewOptions(bootstrapServers, completionsTopic, dedupTopic, statsTopic, topic, applicationId,
                stateDir, advertisedHost, httpPort, window, streams);
    }

    public ViewOptions withInstance(String appId, Path dir, String host, int port, Map<String, String> extra) {
        return new ViewOptions(bootstrapServers, completionsTopic, dedupTopic, statsTopic, deadLetterTopic, appId,
                dir, host, port, window, extra);
    }

    public ViewOptions withTopics(String dedup, String stats) {
        return new ViewOptions(bootstrapServers, completionsTopic, dedup, stats, deadLetterTopic, applicationId,
                stateDir, advertisedHost, httpPort, window, streams);
    }
}
