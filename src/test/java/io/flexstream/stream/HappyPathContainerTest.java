package io.flexstream.stream;

import io.flexstream.stream.avro.Completion;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.kafka.KafkaContainer;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The happy path against the official apache/kafka image in a container, in addition to (never instead of) the
 * in-process broker of {@link HappyPathKafkaTest}: a real, separately packaged broker catches what an embedded one of
 * the same jars cannot. {@code disabledWithoutDocker} makes it run wherever a Docker engine exists and show up as
 * skipped (not silently absent) where none does, like this project's build machines.
 */
@Testcontainers(disabledWithoutDocker = true)
@Timeout(300)
class HappyPathContainerTest {

    @Container
    static final KafkaContainer KAFKA = new KafkaContainer("apache/kafka:4.4.0");

    @Test
    void everyPromptGetsACompletionThroughARealBrokerImage() {
        String bootstrap = KAFKA.getBootstrapServers();
        try (var admin = org.apache.kafka.clients.admin.Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            admin.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic("tc-prompts", 2, (short) 1),
                    new org.apache.kafka.clients.admin.NewTopic("tc-completions", 2, (short) 1),
                    new org.apache.kafka.clients.admin.NewTopic("tc-prompts.DLT", 1, (short) 1))).all().get();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        List<String> ids = IntStream.range(0, 12).mapToObj(i -> "tc" + i).toList();
        KafkaTestSupport.produceJson(bootstrap, "tc-prompts", ids, 3);
        StreamConfig config = StreamConfig.fromMap(
                KafkaTestSupport.config(bootstrap, "tc-prompts", "tc-completions", "tc"));
        try (StreamNode node = StreamNode.start(config, EchoGenerator.fast(), BatchSizer.fixed(4))) {
            List<Completion> completions = KafkaTestSupport.readCompletionsFor(bootstrap, "tc-completions",
                    Set.copyOf(ids), Duration.ofSeconds(90));
            assertEquals(Set.copyOf(ids), completions.stream().map(Completion::getId).collect(Collectors.toSet()));
            assertEquals(ids.size(), completions.size());
            Map<Integer, Long> end = KafkaTestSupport.endOffsets(bootstrap, "tc-prompts", 2);
            assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(20),
                    () -> end.equals(KafkaTestSupport.committed(bootstrap, "tc"))));
        }
    }
}
