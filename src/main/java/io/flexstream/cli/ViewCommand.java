package io.flexstream.cli;

import io.flexstream.view.CompletionsView;
import io.flexstream.view.ViewOptions;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code flexstream view}: the completions topic as a deduplicated, queryable table with per-minute statistics (a
 * Kafka Streams app; run several with the same application id to share the partitions). Stops on SIGTERM/SIGINT.
 */
@Command(name = "view", mixinStandardHelpOptions = true,
        description = {"Deduplicate completions into a compacted topic, serve GET /completions/{id} and GET /stats.",
                "Health and Prometheus metrics (/health/live, /health/ready, /metrics) are served on the same port, "
                        + "and on --metrics-port if given."})
public final class ViewCommand implements Callable<Integer> {

    @Option(names = "--bootstrap-servers", required = true, paramLabel = "HOST:PORT",
            description = "Kafka bootstrap servers")
    String bootstrapServers;

    @Option(names = "--topic", required = true, paramLabel = "T", description = "the completions topic")
    String topic;

    @Option(names = "--http-port", defaultValue = "8080", description = "API, health and metrics port (default: 8080)")
    int httpPort;

    @Option(names = "--metrics-port", paramLabel = "N",
            description = "also serve /metrics and /health/* on this port (default: only on --http-port)")
    Integer metricsPort;

    @Option(names = "--advertised-host", paramLabel = "HOST",
            description = "host name other instances reach this one by (default: $POD_IP, else localhost)")
    String advertisedHost;

    @Option(names = "--application-id", defaultValue = "flexstream-view",
            description = "Kafka Streams application id; instances sharing it share the work "
                    + "(default: flexstream-view)")
    String applicationId;

    @Option(names = "--state-dir", paramLabel = "DIR", description = "state store directory (default: Kafka Streams')")
    Path stateDir;

    @Option(names = "--dedup-topic", paramLabel = "T", description = "compacted output (default: <topic>.dedup)")
    String dedupTopic;

    @Option(names = "--stats-topic", paramLabel = "T", description = "statistics output (default: <topic>.stats)")
    String statsTopic;

    @Option(names = "--dlt-topic", paramLabel = "T",
            description = "dead-letter topic to count per reason (default: none)")
    String dltTopic;

    @Option(names = {"-S", "--streams"}, paramLabel = "KEY=VALUE",
            description = "Kafka Streams / client setting (repeatable), e.g. -S num.stream.threads=2")
    Map<String, String> streams = new LinkedHashMap<>();

    @Override
    public Integer call() throws Exception {
        String host = advertisedHost != null ? advertisedHost
                : System.getenv().getOrDefault("POD_IP", "localhost");
        ViewOptions defaults = ViewOptions.defaults(bootstrapServers, topic);
        ViewOptions options = defaults
                .withTopics(dedupTopic == null ? defaults.dedupTopic() : dedupTopic,
                        statsTopic == null ? defaults.statsTopic() : statsTopic)
                .withDeadLetterTopic(dltTopic)
                .withInstance(applicationId, stateDir, host, httpPort, streams);
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        new JvmMemoryMetrics().bindTo(registry);
        CompletionsView view;
        try {
            view = CompletionsView.start(options, registry, metricsPort == null ? -1 : metricsPort);
        } catch (RuntimeException e) {
            System.err.println("flexstream view: " + e.getMessage());
            return 2;
        }
        Thread hook = new Thread(view::close, "flexstream-view-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        view.awaitTermination();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
            view.close();
        } catch (IllegalStateException shuttingDown) {
            // the hook is closing the view
        }
        return view.state().name().equals("ERROR") ? 1 : 0;
    }
}
