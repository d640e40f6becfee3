package io.flexstream.stream;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The poll loop against kafka-clients' MockConsumer and MockProducer: commit history and ownership epochs. */
@Timeout(30)
class MockConsumerLoopTest {

    private static final String IN = "in";
    private static final TopicPartition P0 = new TopicPartition(IN, 0);
    private static final TopicPartition P1 = new TopicPartition(IN, 1);

    /** Keeps the last committed offsets readable after close (MockConsumer refuses every call once closed). */
    private static final class RecordingConsumer extends MockConsumer<byte[], byte[]> {
        final Map<TopicPartition, Long> lastCommitted = new java.util.concurrent.ConcurrentHashMap<>();

        RecordingConsumer() {
            super("earliest");
        }

        @Override
        public synchronized void commitSync(Map<TopicPartition, OffsetAndMetadata> offsets, Duration timeout) {
            super.commitSync(offsets, timeout);
            offsets.forEach((tp, om) -> lastCommitted.put(tp, om.offset()));
        }

        @Override
        public synchronized void commitAsync(Map<TopicPartition, OffsetAndMetadata> offsets,
                                             org.apache.kafka.clients.consumer.OffsetCommitCallback callback) {
            super.commitAsync(offsets, callback);
            offsets.forEach((tp, om) -> lastCommitted.put(tp, om.offset()));
        }
    }

    private final RecordingConsumer consumer = new RecordingConsumer();
    private final MockProducer<byte[], byte[]> producer =
            new MockProducer<>(true, null, new ByteArraySerializer(), new ByteArraySerializer());

    private static StreamConfig config() {
        Map<String, String> m = KafkaTestSupport.config("unused:9092", IN, "out", "g");
        m.put("batch.size", "2");
        m.put("linger.ms", "0");
        return StreamConfig.fromMap(m);
    }

    private static ConsumerRecord<byte[], byte[]> record(TopicPartition tp, long offset, String value) {
        return new ConsumerRecord<>(IN, tp.partition(), offset, ("k" + offset).getBytes(StandardCharsets.UTF_8),
                value.getBytes(StandardCharsets.UTF_8));
    }

    private void assign(List<TopicPartition> partitions) {
        consumer.schedulePollTask(() -> {
            consumer.rebalance(partitions);
            Map<TopicPartition, Long> begin = new HashMap<>();
            partitions.forEach(tp -> begin.put(tp, 0L));
            consumer.updateBeginningOffsets(begin);
        });
    }

    private Map<TopicPartition, Long> committed() {
        return consumer.lastCommitted;
    }

    @Test
    void completionsAndDeadLettersArePublishedAndOffsetsCommitted() {
        assign(List.of(P0, P1));
        consumer.schedulePollTask(() -> {
            for (long o = 0; o < 3; o++) {
                consumer.addRecord(record(P0, o, KafkaTestSupport.jsonPrompt("a" + o, "hello " + o, 2)));
            }
            consumer.addRecord(record(P1, 0, "garbage"));
            consumer.addRecord(record(P1, 1, KafkaTestSupport.jsonPrompt("b1", "world", 2)));
        });
        StreamNode node = new StreamNode(config(), EchoGenerator.fast(), BatchSizer.fixed(2), consumer, producer);
        node.begin();
        assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(10), () -> producer.history().size() == 5));
        node.close();
        List<ProducerRecord<byte[], byte[]>> sent = producer.history();
        assertEquals(4, sent.stream().filter(r -> r.topic().equals("out")).count());
        assertEquals(1, sent.stream().filter(r -> r.topic().equals(IN + ".DLT")).count());
        assertEquals(3, committed().get(P0));
        assertEquals(2, committed().get(P1));
    }

    @Test
    void resultsOfARevokedPartitionArePublishedButNeverCommitted() {
        assign(List.of(P0, P1));
        consumer.schedulePollTask(() -> {
            consumer.addRecord(record(P1, 0, KafkaTestSupport.jsonPrompt("slow0", "slow zero", 2)));
            consumer.addRecord(record(P1, 1, KafkaTestSupport.jsonPrompt("slow1", "slow one", 2)));
        });
        EchoGenerator slow = new EchoGenerator(256, 1_500, null);
        Map<String, String> m = KafkaTestSupport.config("unused:9092", IN, "out", "g");
        m.put("batch.size", "2");
        m.put("linger.ms", "1000");     // both prompts in one block
        StreamNode node = new StreamNode(StreamConfig.fromMap(m), slow, BatchSizer.fixed(2), consumer, producer);
        node.begin();
        assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(10), () -> slow.generateCalls.get() == 1),
                "the block started");
        assign(List.of(P0));        // P1 moves to another member while its block is in flight
        assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(10), () -> producer.history().size() == 2),
                "the stale block's completions are still published");
        node.close();
        assertEquals(2, slow.promptsGenerated.get());
        Long p1 = committed().get(P1);
        assertTrue(p1 == null || p1 == 0, "but this node never commits the offsets of a partition it lost: " + p1);
    }

    @Test
    void pausesAtCapacityAndResumesWhenRoomFrees() {
        Map<String, String> m = KafkaTestSupport.config("unused:9092", IN, "out", "g");
        m.put("batch.size", "2");
        m.put("max.buffered", "2");
        m.put("linger.ms", "0");
        assign(List.of(P0));
        consumer.schedulePollTask(() -> {
            for (long o = 0; o < 4; o++) {
                consumer.addRecord(record(P0, o, KafkaTestSupport.jsonPrompt("p" + o, "prompt " + o, 2)));
            }
        });
        EchoGenerator slow = new EchoGenerator(256, 800, null);
        StreamNode node = new StreamNode(StreamConfig.fromMap(m), slow, BatchSizer.fixed(2), consumer, producer);
        node.begin();
        assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(10), () -> consumer.paused().contains(P0)),
                "paused while the buffer is full");
        assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(10), () -> producer.history().size() == 4));
        assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(5), () -> consumer.paused().isEmpty()),
                "resumed once the completions were acknowledged");
        node.close();
        assertEquals(4, committed().get(P0));
    }
}
