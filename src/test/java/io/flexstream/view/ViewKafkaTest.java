package io.flexstream.view;

import com.fasterxml.jackson.databind.JsonNode;
import io.flexstream.stream.EmbeddedKafkaBroker;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The view against the real in-process broker, two instances sharing the work: duplicates collapse on the compacted
 * topic, every id is answered by both instances (one of them forwarding to the holder of the key), and /stats merges
 * both instances' windows.
 */
@Timeout(120)
class ViewKafkaTest {

    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    Path state;

    @Test
    void twoInstancesDeduplicateAndAnswerEveryIdOverHttp() throws Exception {
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.builder().start()) {
            String topic = "view-completions";
            broker.createTopics(Map.of(topic, 2, "view-prompts.DLT", 1));
            int n = 20;
            produce(broker.bootstrapServers(), topic, n);
            produceDeadLetters(broker.bootstrapServers(), "view-prompts.DLT");

            ViewOptions options = ViewOptions.defaults(broker.bootstrapServers(), topic)
                    .withDeadLetterTopic("view-prompts.DLT");
            Map<String, String> fast = Map.of("commit.interval.ms", "100");
            PrometheusMeterRegistry registryA = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            try (CompletionsView a = CompletionsView.start(options.withInstance("view-it", state.resolve("a"),
                         "localhost", 0, fast), registryA);
                 CompletionsView b = CompletionsView.start(options.withInstance("view-it", state.resolve("b"),
                         "localhost", 0, fast), new PrometheusMeterRegistry(PrometheusConfig.DEFAULT), 0)) {
                assertTrue(eventually(Duration.ofSeconds(45), () -> a.state() == KafkaStreams.State.RUNNING
                        && b.state() == KafkaStreams.State.RUNNING), "both instances running");

                List<ConsumerRecord<String, byte[]>> dedup = read(broker.bootstrapServers(), topic + ".dedup", n);
                assertEquals(n, dedup.size(), "one record per id on the dedup topic");
                assertEquals(n, dedup.stream().map(ConsumerRecord::key).distinct().count());

                int forwarded = 0;
                for (int i = 0; i < n; i++) {
                    String id = "id-" + i;
                    for (CompletionsView view : List.of(a, b)) {
                        HttpResponse<String> r = get(view.httpPort(), "/completions/" + id);
                        assertEquals(200, r.statusCode(), id + ": " + r.body());
                        JsonNode c = ViewSerdes.JSON.readTree(r.body());
                        assertEquals(id, c.get("id").asText());
                        assertEquals("first " + id, c.get("text").asText(), "the first completion wins");
                        String servedBy = r.headers().firstValue(ViewHttpApi.SERVED_BY).orElseThrow();
                        if (!servedBy.equals("localhost:" + view.httpPort())) {
                            forwarded++;
                        }
                    }
                }
                assertEquals(n, forwarded, "each id is held by one instance, so the other forwards it");
                assertEquals(404, get(a.httpPort(), "/completions/nope").statusCode());

                JsonNode[] stats = new JsonNode[1];
                assertTrue(eventually(Duration.ofSeconds(20), () -> {
                    stats[0] = json(get(a.httpPort(), "/stats?minutes=60"));
                    return sum(stats[0], "completions", "completions") == n
                            && sum(stats[0], "dead_letters", "count") == 3;
                }), () -> "stats " + stats[0]);
                assertEquals(2, stats[0].get("instances").asInt());

                assertEquals(200, get(a.httpPort(), "/health/ready").statusCode());
                assertEquals(200, get(a.httpPort(), "/health/live").statusCode());
                HttpResponse<String> metrics = get(a.httpPort(), "/metrics");
                assertEquals(200, metrics.statusCode());
                assertTrue(metrics.body().contains("kafka_stream"), "Kafka Streams metrics are bound");
                assertTrue(b.metricsPort() != b.httpPort(), "b has a separate metrics port");
                assertEquals(200, get(b.metricsPort(), "/health/ready").statusCode());
                assertTrue(get(b.metricsPort(), "/metrics").body().contains("kafka_stream"));
            }
        }
    }

    private static void produce(String bootstrap, String topic, int n) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < n; i++) {
                producer.send(new ProducerRecord<>(topic, "id-" + i,
                        ViewFixtures.avro(ViewFixtures.completion("id-" + i, "first id-" + i, 3, 4, 10, 100))));
            }
            for (int i = 0; i < n; i += 4) {      // redelivered after a crash: same ids, later
                producer.send(new ProducerRecord<>(topic, "id-" + i,
                        ViewFixtures.avro(ViewFixtures.completion("id-" + i, "again id-" + i, 3, 4, 10, 100))));
            }
            producer.flush();
        }
    }

    private static void produceDeadLetters(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p)) {
            for (String reason : List.of("empty_prompt", "empty_prompt", "undecodable")) {
                producer.send(new ProducerRecord<>(topic, "k", ViewFixtures.deadLetter(reason)));
            }
            producer.flush();
        }
    }

    private static List<ConsumerRecord<String, byte[]>> read(String bootstrap, String topic, int atLeast) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = consumer.partitionsFor(topic, Duration.ofSeconds(10)).stream()
                    .map(i -> new TopicPartition(topic, i.partition())).toList();
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (out.size() < atLeast && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            consumer.poll(Duration.ofMillis(500)).forEach(out::add);    // a duplicate would show up here
        }
        return out;
    }

    private static long sum(JsonNode stats, String kind, String field) {
        long total = 0;
        for (JsonNode w : stats.path("windows")) {
            if (w.path("kind").asText().equals(kind)) {
                total += w.path(field).asLong();
            }
        }
        return total;
    }

    static HttpResponse<String> get(int port, String path) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create("http://localhost:" + port + path)).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static JsonNode json(HttpResponse<String> r) {
        try {
            return r.statusCode() == 200 ? ViewSerdes.JSON.readTree(r.body()) : ViewSerdes.JSON.createObjectNode();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static boolean eventually(Duration timeout, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (condition.getAsBoolean()) {
                return true;
            }
            Thread.sleep(100);
        }
        return condition.getAsBoolean();
    }
}
