package io.flexstream.view;

import io.flexstream.metrics.OpsServer;
import io.micrometer.core.instrument.binder.kafka.KafkaStreamsMetrics;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.state.HostInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * One running instance of {@code flexstream view}: the {@link ViewTopology} in a {@link KafkaStreams} app, and the
 * HTTP server with the API ({@link ViewHttpApi}), health and metrics on one port.
 *
 * <p>Start order matters: the HTTP port is bound first, because its actual number is this instance's
 * {@code application.server}, which Kafka Streams hands to the other instances for forwarding.
 *
 * <p>Topics: the completions topic (and the dead-letter topic, if given) must exist. The deduplicated topic is
 * created compacted with the completions topic's partition count (one completion per id is all it must keep); the
 * stats topic compacted too (the last update of each window is its final value). Both are left alone if they exist.
 */
public final class CompletionsView implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(CompletionsView.class);

    private final KafkaStreams streams;
    private final OpsServer server;
    private final KafkaStreamsMetrics metrics;
    private final OpsServer opsServer;

    private CompletionsView(KafkaStreams streams, OpsServer server, KafkaStreamsMetrics metrics, OpsServer opsServer) {
        this.streams = streams;
        this.server = server;
        this.metrics = metrics;
        this.opsServer = opsServer;
    }

    /** Health and metrics on the API's port. */
    public static CompletionsView start(ViewOptions options, PrometheusMeterRegistry registry) {
        return start(options, registry, -1);
    }

    /**
     * @param metricsPort a separate port for /metrics and /health/* (they stay on the API port too), or -1 for the
     *                    API port only
     */
    public static CompletionsView start(ViewOptions options, PrometheusMeterRegistry registry, int metricsPort) {
        createTopics(options);
        OpsServer server = OpsServer.start(options.httpPort(), registry);
        OpsServer ops = null;
        try {
            ops = metricsPort < 0 || metricsPort == server.port() ? null : OpsServer.start(metricsPort, registry);
            HostInfo self = new HostInfo(options.advertisedHost(), server.port());
            KafkaStreams streams = new KafkaStreams(ViewTopology.build(options), properties(options, self));
            for (OpsServer s : ops == null ? List.of(server) : List.of(server, ops)) {
                s.health(() -> streams.state().isRunningOrRebalancing()
                                || streams.state() == KafkaStreams.State.CREATED,
                        () -> streams.state() == KafkaStreams.State.RUNNING);
            }
            KafkaStreamsMetrics metrics = new KafkaStreamsMetrics(streams);
            metrics.bindTo(registry);
            new ViewHttpApi(streams, self, options.deadLetterTopic() != null).register(server);
            streams.setUncaughtExceptionHandler(e -> {
                LOG.error("view stream thread failed; replacing it", e);
                return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                        .REPLACE_THREAD;
            });
            streams.start();
            LOG.info("view of {} -> {} (dedup), {} (stats){} as {}; API on http://{}:{}/completions/{{id}} and /stats",
                    options.completionsTopic(), options.dedupTopic(), options.statsTopic(),
                    options.deadLetterTopic() == null ? "" : ", dead letters from " + options.deadLetterTopic(),
                    options.applicationId(), self.host(), self.port());
            return new CompletionsView(streams, server, metrics, ops);
        } catch (RuntimeException e) {
            server.close();
            if (ops != null) {
                ops.close();
            }
            throw e;
        }
    }

    static Properties properties(ViewOptions options, HostInfo self) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, options.applicationId());
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, options.bootstrapServers());
        p.put(StreamsConfig.APPLICATION_SERVER_CONFIG, self.host() + ":" + self.port());
        // Kafka Streams commits (and flushes its caches downstream) every 30 s by default under at-least-once; a view
        // people query wants seconds. Overridable like any other setting.
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "1000");
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        if (options.stateDir() != null) {
            p.put(StreamsConfig.STATE_DIR_CONFIG, options.stateDir().toString());
        }
        p.putAll(options.streams());
        return p;
    }

    private static void createTopics(ViewOptions options) {
        Properties admin = new Properties();
        admin.put("bootstrap.servers", options.bootstrapServers());
        options.streams().forEach((k, v) -> {
            if (k.startsWith("security.") || k.startsWith("sasl.") || k.startsWith("ssl.")) {
                admin.put(k, v);
            }
        });
        try (Admin client = Admin.create(admin)) {
            List<String> sources = new ArrayList<>(List.of(options.completionsTopic()));
            if (options.deadLetterTopic() != null) {
                sources.add(options.deadLetterTopic());
            }
            Map<String, TopicDescription> found = client.describeTopics(sources).allTopicNames()
                    .get(30, TimeUnit.SECONDS);
            int partitions = found.get(options.completionsTopic()).partitions().size();
            Map<String, String> compact = Map.of(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT);
            for (String topic : List.of(options.dedupTopic(), options.statsTopic())) {
                try {
                    client.createTopics(List.of(new NewTopic(topic, Optional.of(partitions), Optional.empty())
                            .configs(compact))).all().get(30, TimeUnit.SECONDS);
                    LOG.info("created compacted topic {} ({} partitions)", topic, partitions);
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw e;
                    }
                }
            }
        } catch (ExecutionException e) {
            throw new IllegalStateException("cannot prepare the view's topics: " + e.getCause().getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while preparing topics", e);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("the cluster did not answer within 30 s", e);
        }
    }

    public KafkaStreams.State state() {
        return streams.state();
    }

    public int httpPort() {
        return server.port();
    }

    /** The port of the separate metrics and health server, or the API port when there is none. */
    public int metricsPort() {
        return opsServer == null ? server.port() : opsServer.port();
    }

    /** Blocks until the app stops (after {@link #close()} or a fatal error). */
    public void awaitTermination() throws InterruptedException {
        while (streams.state() != KafkaStreams.State.NOT_RUNNING && streams.state() != KafkaStreams.State.ERROR) {
            Thread.sleep(500);
        }
    }

    @Override
    public void close() {
        streams.close(Duration.ofSeconds(30));
        metrics.close();
        server.close();
        if (opsServer != null) {
            opsServer.close();
        }
    }
}
