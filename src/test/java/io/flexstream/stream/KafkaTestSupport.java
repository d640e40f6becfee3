package io.flexstream.stream;

import io.flexstream.stream.avro.Completion;
import io.flexstream.stream.avro.DeadLetter;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/** Producing prompts, reading completions and dead letters, and reading committed offsets, for the Kafka tests. */
final class KafkaTestSupport {

    private KafkaTestSupport() {
    }

    static Map<String, String> config(String bootstrap, String input, String output, String group) {
        Map<String, String> m = new HashMap<>();
        m.put("bootstrap.servers", bootstrap);
        m.put("input.topic", input);
        m.put("output.topic", output);
        m.put("group.id", group);
        m.put("batch.size", "4");
        m.put("linger.ms", "50");
        m.put("commit.interval.ms", "200");
        m.put("shutdown.timeout.ms", "10000");
        return m;
    }

    static String jsonPrompt(String id, String prompt, int maxNewTokens) {
        return "{\"id\":\"" + id + "\",\"prompt\":\"" + prompt + "\",\"max_new_tokens\":" + maxNewTokens + "}";
    }

    /** Sends key/value pairs (value bytes as given; a null value is a tombstone), waiting for every ack. */
    static void produce(String bootstrap, String topic, List<Map.Entry<String, byte[]>> records) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("acks", "all");
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (Map.Entry<String, byte[]> r : records) {
                byte[] key = r.getKey() == null ? null : r.getKey().getBytes(StandardCharsets.UTF_8);
                producer.send(new ProducerRecord<>(topic, key, r.getValue()));
            }
            producer.flush();
        }
    }

    static void produceJson(String bootstrap, String topic, List<String> ids, int maxNewTokens) {
        List<Map.Entry<String, byte[]>> records = new ArrayList<>();
        for (String id : ids) {
            records.add(Map.entry(id, jsonPrompt(id, "prompt number " + id, maxNewTokens)
                    .getBytes(StandardCharsets.UTF_8)));
        }
        produce(bootstrap, topic, records);
    }

    /** Reads a topic from the beginning until {@code done} holds for what was read, or the timeout passes. */
    static List<ConsumerRecord<byte[], byte[]>> readUntil(String bootstrap, String topic,
                                                          Predicate<List<ConsumerRecord<byte[], byte[]>>> done,
                                                          Duration timeout) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = consumer.partitionsFor(topic, Duration.ofSeconds(10)).stream()
                    .map(i -> new TopicPartition(topic, i.partition())).toList();
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            long deadline = System.nanoTime() + timeout.toNanos();
            while (!done.test(out) && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
        return out;
    }

    static List<Completion> readCompletions(String bootstrap, String topic, int atLeast, Duration timeout) {
        return readUntil(bootstrap, topic, r -> r.size() >= atLeast, timeout).stream()
                .map(r -> decodeCompletion(r.value())).toList();
    }

    /** Reads until every id in {@code ids} has at least one completion (or timeout); returns all read. */
    static List<Completion> readCompletionsFor(String bootstrap, String topic, java.util.Set<String> ids,
                                               Duration timeout) {
        return readUntil(bootstrap, topic, r -> r.stream().map(c -> decodeCompletion(c.value()).getId())
                        .collect(Collectors.toSet()).containsAll(ids), timeout).stream()
                .map(r -> decodeCompletion(r.value())).toList();
    }

    static Completion decodeCompletion(byte[] value) {
        try {
            return Completion.getDecoder().decode(value);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static DeadLetter decodeDeadLetter(byte[] value) {
        try {
            return DeadLetter.getDecoder().decode(value);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Committed offset of each partition of {@code topic} for {@code group} (missing partitions: none committed). */
    static Map<Integer, Long> committed(String bootstrap, String group) {
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get();
            Map<Integer, Long> out = new HashMap<>();
            offsets.forEach((tp, om) -> {
                if (om != null) {
                    out.put(tp.partition(), om.offset());
                }
            });
            return out;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static Map<Integer, Long> endOffsets(String bootstrap, String topic, int partitions) {
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            Map<TopicPartition, OffsetSpec> request = new HashMap<>();
            for (int i = 0; i < partitions; i++) {
                request.put(new TopicPartition(topic, i), OffsetSpec.latest());
            }
            Map<Integer, Long> out = new HashMap<>();
            admin.listOffsets(request).all().get().forEach((tp, info) -> out.put(tp.partition(), info.offset()));
            return out;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Polls {@code condition} every 100 ms until it holds or the timeout passes; returns its last value. */
    static boolean eventually(Duration timeout, java.util.function.BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (condition.getAsBoolean()) {
                return true;
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return condition.getAsBoolean();
    }
}
