package io.flexstream.stream;

import io.flexstream.stream.avro.Completion;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A second member joins mid-run and later leaves; every prompt is completed, both members did work, and the group's
 * offsets reach the end. Duplicates are allowed (at-least-once) but must stay within what was in flight.
 */
@Timeout(180)
class RebalanceKafkaTest {

    private static EmbeddedKafkaBroker broker;

    @BeforeAll
    static void startBroker() {
        // KIP-848 members heartbeat every 5 s by default: a join would take longer than the work.
        broker = EmbeddedKafkaBroker.builder()
                .brokerProperty("group.consumer.min.heartbeat.interval.ms", "500")
                .brokerProperty("group.consumer.heartbeat.interval.ms", "1000")
                .start();
    }

    @AfterAll
    static void stopBroker() {
        broker.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"classic", "consumer"})
    void secondMemberJoinsAndLeavesWithoutLosingPrompts(String protocol) throws Exception {
        String in = "rebalance-" + protocol;
        String out = "rebalance-out-" + protocol;
        String group = "rebalance-" + protocol;
        broker.createTopics(Map.of(in, 4, out, 2, in + ".DLT", 1));
        List<String> ids = IntStream.range(0, 100).mapToObj(i -> protocol.charAt(0) + "-" + i).toList();
        KafkaTestSupport.produceJson(broker.bootstrapServers(), in, ids, 2);
        Map<String, String> raw = KafkaTestSupport.config(broker.bootstrapServers(), in, out, group);
        raw.put("group.protocol", protocol);
        StreamConfig config = StreamConfig.fromMap(raw);

        EchoGenerator first = new EchoGenerator(256, 400, null);
        EchoGenerator second = new EchoGenerator(256, 400, null);
        try (StreamNode a = StreamNode.start(config, first, BatchSizer.fixed(4))) {
            assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(30), () -> a.completions() >= 8));
            try (StreamNode b = StreamNode.start(config, second, BatchSizer.fixed(4))) {
                assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(40), () -> b.completions() >= 8),
                        "the joining member got partitions and did work");
            }
            List<Completion> completions = KafkaTestSupport.readCompletionsFor(broker.bootstrapServers(), out,
                    Set.copyOf(ids), Duration.ofSeconds(60));
            assertEquals(Set.copyOf(ids), completions.stream().map(Completion::getId).collect(Collectors.toSet()),
                    "no prompt lost");
            int duplicates = completions.size() - ids.size();
            assertTrue(duplicates <= 2 * config.maxBuffered(), "duplicates " + duplicates);
            Map<Integer, Long> end = KafkaTestSupport.endOffsets(broker.bootstrapServers(), in, 4);
            assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(20),
                    () -> end.equals(KafkaTestSupport.committed(broker.bootstrapServers(), group))));
            System.out.printf("rebalance (%s): %d prompts, %d completions, %d duplicates, first %d, second %d%n",
                    protocol, ids.size(), completions.size(), duplicates, first.promptsGenerated.get(),
                    second.promptsGenerated.get());
        }
    }
}
