package io.flexstream.stream;

import io.flexstream.stream.avro.Completion;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A block three times longer than {@code max.poll.interval.ms} (3 s vs 9 s) keeps the membership: no rebalance, no
 * redelivery, each prompt completed once, and the commits after it succeed. Run with both group protocols.
 */
@Timeout(120)
class LongBlockKafkaTest {

    private static EmbeddedKafkaBroker broker;

    @BeforeAll
    static void startBroker() {
        broker = EmbeddedKafkaBroker.builder().start();
    }

    @AfterAll
    static void stopBroker() {
        broker.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"classic", "consumer"})
    void blockLongerThanMaxPollIntervalKeepsMembership(String protocol) {
        String in = "long-" + protocol;
        String out = "long-out-" + protocol;
        broker.createTopics(Map.of(in, 2, out, 1, in + ".DLT", 1));
        List<String> ids = IntStream.range(0, 4).mapToObj(i -> protocol + i).toList();
        KafkaTestSupport.produceJson(broker.bootstrapServers(), in, ids, 2);

        Map<String, String> raw = KafkaTestSupport.config(broker.bootstrapServers(), in, out, "long-" + protocol);
        raw.put("max.poll.interval.ms", "3000");
        raw.put("group.protocol", protocol);
        raw.put("linger.ms", "500");
        raw.put("kafka.consumer.session.timeout.ms", protocol.equals("classic") ? "6000" : null);
        raw.values().removeIf(v -> v == null);
        EchoGenerator generator = new EchoGenerator(256, 9_000, null);
        try (StreamNode node = StreamNode.start(StreamConfig.fromMap(raw), generator, BatchSizer.fixed(4))) {
            List<Completion> completions = KafkaTestSupport.readCompletionsFor(broker.bootstrapServers(), out,
                    Set.copyOf(ids), Duration.ofSeconds(60));
            assertEquals(Set.copyOf(ids), completions.stream().map(Completion::getId).collect(Collectors.toSet()));
            Map<Integer, Long> end = KafkaTestSupport.endOffsets(broker.bootstrapServers(), in, 2);
            assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(15),
                    () -> end.equals(KafkaTestSupport.committed(broker.bootstrapServers(), "long-" + protocol))),
                    "commits after the long block succeed");
            // Give a lost membership the time to show up as a redelivery before counting.
            KafkaTestSupport.eventually(Duration.ofSeconds(2), () -> false);
            assertEquals(1, node.rebalances(), "only the initial assignment: the membership was never lost");
            assertEquals(ids.size(), generator.promptsGenerated.get(), "no prompt was delivered twice");
            assertEquals(ids.size(), KafkaTestSupport.readCompletions(broker.bootstrapServers(), out, ids.size() + 1,
                    Duration.ofSeconds(2)).size(), "exactly one completion per prompt");
        }
    }
}
