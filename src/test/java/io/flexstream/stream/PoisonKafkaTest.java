package io.flexstream.stream;

import io.flexstream.stream.avro.Completion;
import io.flexstream.stream.avro.DeadLetter;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every class of bad input becomes a dead letter with its reason, the original bytes and the error headers; the good
 * records around them (including the batch mates of a prompt that makes the engine throw) complete, and the offsets
 * commit to the end.
 */
@Timeout(120)
class PoisonKafkaTest {

    private static EmbeddedKafkaBroker broker;

    @BeforeAll
    static void startBroker() {
        broker = EmbeddedKafkaBroker.builder().start();
    }

    @AfterAll
    static void stopBroker() {
        broker.close();
    }

    private static Map.Entry<String, byte[]> json(String key, String value) {
        return Map.entry(key, value.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void badRecordsBecomeDeadLettersAndGoodOnesComplete() {
        String in = "poison-prompts";
        String out = "poison-completions";
        broker.createTopics(Map.of(in, 1, out, 1, in + ".DLT", 1));
        byte[] unknownFingerprint = {(byte) 0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 2, 'h', 'i'};
        List<Map.Entry<String, byte[]>> records = new ArrayList<>();
        records.add(json("g1", KafkaTestSupport.jsonPrompt("g1", "good one", 3)));
        records.add(new java.util.AbstractMap.SimpleEntry<>("null-value", null));
        records.add(json("garbage", "this is not a prompt"));
        records.add(json("broken-json", "{\"id\":\"broken-json\",\"prompt\":"));
        records.add(Map.entry("fingerprint", unknownFingerprint));
        records.add(json("empty", "{\"id\":\"empty\",\"prompt\":\"\"}"));
        records.add(json("long", "{\"id\":\"long\",\"prompt\":\"" + "x".repeat(300) + "\"}"));
        records.add(json("hot", "{\"id\":\"hot\",\"prompt\":\"too hot\",\"temperature\":-1}"));
        records.add(json("zero", "{\"id\":\"zero\",\"prompt\":\"none\",\"max_new_tokens\":0}"));
        records.add(json("badtoken", "{\"id\":\"badtoken\",\"prompt_token_ids\":[5, 99999999]}"));
        records.add(json("g2", KafkaTestSupport.jsonPrompt("g2", "good two", 3)));
        records.add(json("boom", KafkaTestSupport.jsonPrompt("boom", "BOOM goes the engine", 3)));
        records.add(json("g3", KafkaTestSupport.jsonPrompt("g3", "good three", 3)));
        records.add(json("g4", KafkaTestSupport.jsonPrompt("g4", "good four", 3)));
        records.add(json("g5", KafkaTestSupport.jsonPrompt("g5", "good five", 3)));
        records.add(json("g6", "{\"prompt_token_ids\":[5, 6, 7],\"max_new_tokens\":2}"));
        KafkaTestSupport.produce(broker.bootstrapServers(), in, records);

        Map<String, String> expectedReasons = new HashMap<>();
        expectedReasons.put("null-value", "null_value");
        expectedReasons.put("garbage", "undecodable");
        expectedReasons.put("broken-json", "undecodable");
        expectedReasons.put("fingerprint", "unknown_schema");
        expectedReasons.put("empty", "empty_prompt");
        expectedReasons.put("long", "prompt_too_long");
        expectedReasons.put("hot", "bad_parameter");
        expectedReasons.put("zero", "bad_parameter");
        expectedReasons.put("badtoken", "bad_token_id");
        expectedReasons.put("boom", "generation_failed");

        StreamConfig config = StreamConfig.fromMap(
                KafkaTestSupport.config(broker.bootstrapServers(), in, out, "poison"));
        EchoGenerator generator = new EchoGenerator(256, 0, "BOOM");
        try (StreamNode node = StreamNode.start(config, generator, BatchSizer.fixed(4))) {
            Set<String> good = Set.of("g1", "g2", "g3", "g4", "g5", "g6");
            List<Completion> completions = KafkaTestSupport.readCompletionsFor(broker.bootstrapServers(), out, good,
                    Duration.ofSeconds(60));
            assertEquals(good, completions.stream().map(Completion::getId).collect(Collectors.toSet()));

            List<ConsumerRecord<byte[], byte[]>> letters = KafkaTestSupport.readUntil(broker.bootstrapServers(),
                    in + ".DLT", r -> r.size() >= expectedReasons.size(), Duration.ofSeconds(30));
            Map<String, String> reasons = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> r : letters) {
                String key = new String(r.key(), StandardCharsets.UTF_8);
                DeadLetter letter = KafkaTestSupport.decodeDeadLetter(r.value());
                reasons.put(key, letter.getReason());
                assertEquals(in, letter.getSourceTopic());
                assertNotNull(r.headers().lastHeader(DeadLetters.HEADER_CLASS), key);
                assertEquals(letter.getReason(), new String(
                        r.headers().lastHeader(DeadLetters.HEADER_REASON).value(), StandardCharsets.UTF_8));
                assertEquals(Long.toString(letter.getSourceOffset()), new String(
                        r.headers().lastHeader(DeadLetters.HEADER_OFFSET).value(), StandardCharsets.UTF_8));
                byte[] original = records.get((int) letter.getSourceOffset()).getValue();
                if (original == null) {
                    assertEquals(null, letter.getOriginalValue());
                } else {
                    byte[] kept = new byte[letter.getOriginalValue().remaining()];
                    letter.getOriginalValue().get(kept);
                    assertArrayEquals(original, kept, key);
                }
            }
            assertEquals(expectedReasons, reasons);
            assertTrue(generator.generateCalls.get() > 2, "the failing batch was bisected");

            long end = KafkaTestSupport.endOffsets(broker.bootstrapServers(), in, 1).get(0);
            assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(15),
                    () -> Long.valueOf(end).equals(KafkaTestSupport.committed(broker.bootstrapServers(), "poison")
                            .get(0))), "offsets committed past every poison record");
            assertTrue(node.isRunning(), "the consumer keeps going");
        }
    }
}
