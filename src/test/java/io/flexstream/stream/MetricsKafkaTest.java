package io.flexstream.stream;

import io.flexstream.metrics.OpsServer;
import io.flexstream.metrics.PrometheusStreamMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A small run on the real broker, then /metrics and the health endpoints read as Prometheus and Kubernetes would. */
@Timeout(120)
class MetricsKafkaTest {

    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @Test
    void metricsAndHealthDescribeASmallRun() throws Exception {
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.builder().start()) {
            String in = "metrics-prompts";
            String out = "metrics-completions";
            broker.createTopics(Map.of(in, 2, out, 2, in + ".DLT", 1));
            List<String> ids = IntStream.range(0, 12).mapToObj(i -> "m" + i).toList();
            KafkaTestSupport.produceJson(broker.bootstrapServers(), in, ids, 4);
            List<Map.Entry<String, byte[]>> poison = new ArrayList<>();
            poison.add(Map.entry("bad", "{not json".getBytes(StandardCharsets.UTF_8)));
            KafkaTestSupport.produce(broker.bootstrapServers(), in, poison);

            PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            StreamConfig config = StreamConfig.fromMap(
                    KafkaTestSupport.config(broker.bootstrapServers(), in, out, "metrics"));
            try (OpsServer ops = OpsServer.start(0, registry);
                 StreamNode node = StreamNode.start(config, EchoGenerator.fast(), BatchSizer.fixed(4),
                         new PrometheusStreamMetrics(registry, "cpu", "echo"))) {
                ops.health(() -> node.isLive(60_000), node::isReady);
                KafkaTestSupport.readCompletionsFor(broker.bootstrapServers(), out, new HashSet<>(ids),
                        Duration.ofSeconds(60));
                assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(15),
                        () -> value(scrape(ops), "flexstream_partition_committed_offset", null) == 13),
                        () -> scrape(ops));

                String text = scrape(ops);
                assertEquals(12, value(text, "flexstream_completions_total", null), text);
                assertEquals(48, value(text, "flexstream_generated_tokens_total", null));
                assertEquals(1, value(text, "flexstream_dead_letters_total", "reason=\"undecodable\""));
                assertTrue(value(text, "flexstream_block_duration_seconds_count", null) >= 3);
                assertTrue(value(text, "flexstream_block_size_prompts_max", null) <= 4);
                assertEquals(13, value(text, "flexstream_partition_next_offset", null));
                assertTrue(value(text, "flexstream_rebalances_total", "kind=\"assigned\"") >= 1);
                assertTrue(value(text, "flexstream_commits_total", null) >= 1);
                assertEquals(1, value(text, "flexstream_backend_info", "backend=\"cpu\""));
                assertEquals(0, value(text, "flexstream_records_outstanding", null));
                assertTrue(text.contains("flexstream_block_duration_seconds_bucket"), "histogram for quantiles");

                assertEquals(200, get(ops, "/health/live").statusCode());
                assertEquals(200, get(ops, "/health/ready").statusCode());
                assertEquals(405, HTTP.send(HttpRequest.newBuilder(uri(ops, "/metrics"))
                        .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString())
                        .statusCode());
            }
        }
    }

    /** Sum of every sample of {@code name} whose labels contain {@code label} (any labels when null). */
    private static double value(String scrape, String name, String label) {
        double sum = 0;
        Matcher m = Pattern.compile("(?m)^" + name + "(\\{[^}]*})? (\\S+)$").matcher(scrape);
        while (m.find()) {
            if (label == null || (m.group(1) != null && m.group(1).contains(label))) {
                sum += Double.parseDouble(m.group(2));
            }
        }
        return sum;
    }

    private static String scrape(OpsServer ops) {
        return get(ops, "/metrics").body();
    }

    private static HttpResponse<String> get(OpsServer ops, String path) {
        try {
            return HTTP.send(HttpRequest.newBuilder(uri(ops, path)).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static URI uri(OpsServer ops, String path) {
        return URI.create("http://localhost:" + ops.port() + path);
    }
}
