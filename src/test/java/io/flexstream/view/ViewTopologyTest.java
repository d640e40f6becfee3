package io.flexstream.view;

import com.fasterxml.jackson.databind.JsonNode;
import io.flexstream.stream.CompletionPublisher;
import io.flexstream.stream.avro.Completion;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.state.KeyValueStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The view's topology on {@link TopologyTestDriver}: deduplication, per-minute statistics, dead letters per reason. */
class ViewTopologyTest {

    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    @TempDir
    Path state;

    private TopologyTestDriver driver;
    private TestInputTopic<String, byte[]> completions;
    private TestInputTopic<String, byte[]> deadLetters;
    private TestOutputTopic<String, byte[]> dedup;
    private TestOutputTopic<String, String> stats;

    @BeforeEach
    void start() {
        ViewOptions options = ViewOptions.defaults("unused:9092", "completions").withDeadLetterTopic("prompts.DLT");
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "view-test");
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        p.put(StreamsConfig.STATE_DIR_CONFIG, state.toString());
        driver = new TopologyTestDriver(ViewTopology.build(options), p);
        completions = driver.createInputTopic("completions", new StringSerializer(), new ByteArraySerializer());
        deadLetters = driver.createInputTopic("prompts.DLT", new StringSerializer(), new ByteArraySerializer());
        dedup = driver.createOutputTopic("completions.dedup", new StringDeserializer(), new ByteArrayDeserializer());
        stats = driver.createOutputTopic("completions.stats", new StringDeserializer(), new StringDeserializer());
    }

    @AfterEach
    void stop() {
        driver.close();
    }

    @Test
    void duplicatesCollapseToTheFirstCompletionInStoreAndTopic() {
        completions.pipeInput("a", ViewFixtures.avro(ViewFixtures.completion("a", "first", 3, 4, 100, 900)), T0);
        completions.pipeInput("a", ViewFixtures.avro(ViewFixtures.completion("a", "again", 3, 4, 100, 900)),
                T0.plusSeconds(1));
        // JSON completions (output.format=json) decode with the same code.
        completions.pipeInput("b", CompletionPublisher.toJson(ViewFixtures.completion("b", "json", 5, 2, 0, 3000)),
                T0.plusSeconds(2));
        completions.pipeInput("junk", "not a completion".getBytes(StandardCharsets.UTF_8), T0.plusSeconds(3));
        completions.pipeInput("a", ViewFixtures.avro(ViewFixtures.completion("a", "third", 3, 4, 100, 900)),
                T0.plusSeconds(4));

        List<KeyValue<String, byte[]>> out = dedup.readKeyValuesToList();
        assertEquals(List.of("a", "b"), out.stream().map(kv -> kv.key).toList());
        assertEquals("first", ViewFixtures.decode(out.get(0).value).getText());
        assertEquals("json", ViewFixtures.decode(out.get(1).value).getText());

        KeyValueStore<String, Completion> store = driver.getKeyValueStore(ViewOptions.DEDUP_STORE);
        assertEquals("first", store.get("a").getText());
        assertNull(store.get("junk"));
    }

    @Test
    void statsCountDeduplicatedCompletionsPerMinuteWithLatencyPercentiles() throws Exception {
        completions.pipeInput("a", ViewFixtures.avro(ViewFixtures.completion("a", "x", 3, 4, 100, 900)), T0);
        completions.pipeInput("a", ViewFixtures.avro(ViewFixtures.completion("a", "x", 3, 4, 100, 900)),
                T0.plusSeconds(1));
        completions.pipeInput("b", ViewFixtures.avro(ViewFixtures.completion("b", "y", 5, 2, 0, 3000)),
                T0.plusSeconds(2));
        completions.pipeInput("c", ViewFixtures.avro(ViewFixtures.completion("c", "z", 7, 8, 10, 20)),
                T0.plusSeconds(61));
        deadLetters.pipeInput("p1", ViewFixtures.deadLetter("empty_prompt"), T0.plusSeconds(5));
        deadLetters.pipeInput("p2", ViewFixtures.deadLetter("empty_prompt"), T0.plusSeconds(6));
        deadLetters.pipeInput("p3", ViewFixtures.deadLetter("prompt_too_long"), T0.plusSeconds(7));

        Map<String, String> latest = stats.readKeyValuesToMap();
        JsonNode first = ViewSerdes.JSON.readTree(latest.get("completions/echo@2026-01-01T00:00:00Z"));
        assertEquals(2, first.get("completions").asLong(), "the duplicate of a is not counted");
        assertEquals(8, first.get("generated_tokens").asLong());
        assertEquals(8.0, first.get("tokens_per_minute").asDouble(), 1e-9);
        assertEquals(3.0, first.get("batch_size_mean").asDouble(), 1e-9);
        assertEquals(4, first.get("batch_size_max").asInt());
        long p50 = first.get("latency_p50_ms").asLong();
        assertTrue(p50 >= 1000 && p50 <= 1190, "p50 within one bucket of 1000 ms: " + p50);
        assertEquals(3000, first.get("latency_p99_ms").asLong());
        assertEquals(2, first.get("finish_reasons").get("length").asLong());

        JsonNode second = ViewSerdes.JSON.readTree(latest.get("completions/echo@2026-01-01T00:01:00Z"));
        assertEquals(1, second.get("completions").asLong());
        assertEquals(30, second.get("latency_max_ms").asLong());

        assertEquals(2, ViewSerdes.JSON.readTree(latest.get("dead_letters/empty_prompt@2026-01-01T00:00:00Z"))
                .get("count").asLong());
        assertEquals(1, ViewSerdes.JSON.readTree(latest.get("dead_letters/prompt_too_long@2026-01-01T00:00:00Z"))
                .get("count").asLong());
    }

    @Test
    void latencyHistogramBoundsHoldTheirValues() {
        for (long v : new long[] {0, 1, 2, 3, 999, 1000, 1024, 1025, 60_000, 3_600_000}) {
            int b = LatencyHistogram.bucketOf(v);
            assertTrue(LatencyHistogram.upperBound(b) >= v, v + " in bucket " + b);
            assertTrue(b == 0 || LatencyHistogram.upperBound(b - 1) < v, v + " not in a lower bucket");
        }
    }
}
