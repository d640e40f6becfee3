package io.flexstream.stream;

import io.flexstream.stream.avro.Completion;
import io.flexstream.stream.avro.Prompt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** N prompts in (JSON and Avro), exactly N completions out with the right fields, offsets committed. */
@Timeout(120)
class HappyPathKafkaTest {

    private static EmbeddedKafkaBroker broker;

    @BeforeAll
    static void startBroker() {
        broker = EmbeddedKafkaBroker.builder().start();
    }

    @AfterAll
    static void stopBroker() {
        broker.close();
    }

    @Test
    void everyPromptGetsExactlyOneCompletionAndOffsetsAreCommitted() throws Exception {
        String in = "happy-prompts";
        String out = "happy-completions";
        broker.createTopics(Map.of(in, 3, out, 3, in + ".DLT", 1));
        int n = 30;
        List<String> jsonIds = IntStream.range(0, n / 2).mapToObj(i -> "j" + i).toList();
        KafkaTestSupport.produceJson(broker.bootstrapServers(), in, jsonIds, 5);
        List<Map.Entry<String, byte[]>> avro = new ArrayList<>();
        for (int i = 0; i < n / 2; i++) {
            ByteBuffer value = Prompt.newBuilder().setId("a" + i).setPrompt("avro prompt " + i).setMaxNewTokens(3)
                    .setMetadata(Map.of("source", "test")).build().toByteBuffer();
            byte[] bytes = new byte[value.remaining()];
            value.get(bytes);
            avro.add(Map.entry("a" + i, bytes));
        }
        KafkaTestSupport.produce(broker.bootstrapServers(), in, avro);

        StreamConfig config = StreamConfig.fromMap(
                KafkaTestSupport.config(broker.bootstrapServers(), in, out, "happy"));
        EchoGenerator generator = EchoGenerator.fast();
        try (StreamNode node = StreamNode.start(config, generator, BatchSizer.fixed(4))) {
            Set<String> expected = new HashSet<>(jsonIds);
            avro.forEach(e -> expected.add(e.getKey()));
            List<Completion> completions = KafkaTestSupport.readCompletionsFor(broker.bootstrapServers(), out,
                    expected, Duration.ofSeconds(60));
            assertEquals(expected, completions.stream().map(Completion::getId).collect(Collectors.toSet()));
            assertEquals(n, completions.size(), "exactly one completion per prompt");
            for (Completion c : completions) {
                boolean isJson = c.getId().startsWith("j");
                assertEquals(isJson ? 5 : 3, c.getTokenIds().size(), c.getId());
                assertEquals("length", c.getFinishReason());
                assertEquals("echo", c.getModel());
                assertEquals(in, c.getSourceTopic());
                assertTrue(c.getBatchSize() >= 1 && c.getBatchSize() <= 4, "batch size " + c.getBatchSize());
                assertEquals("fixed(batch=4)", c.getPolicy());
                assertTrue(c.getText().startsWith("echo:"), c.getText());
                if (!isJson) {
                    assertEquals(Map.of("source", "test"), c.getMetadata());
                }
            }
            Map<Integer, Long> end = KafkaTestSupport.endOffsets(broker.bootstrapServers(), in, 3);
            assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(15),
                            () -> end.equals(KafkaTestSupport.committed(broker.bootstrapServers(), "happy"))),
                    () -> "committed " + KafkaTestSupport.committed(broker.bootstrapServers(), "happy")
                            + " vs end " + end);
        }
    }
}
