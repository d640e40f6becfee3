package io.flexstream.stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flexstream.stream.avro.Completion;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * Reads a completions topic from the beginning (no consumer group) until every expected id has a completion; for the
 * demo, the benchmark and tests. Values may be Avro single-object or JSON, whichever the node was configured to emit.
 */
public final class CompletionReader implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final KafkaConsumer<byte[], byte[]> consumer;
    private final Map<String, Completion> firstById = new LinkedHashMap<>();
    private int read;

    public CompletionReader(String bootstrapServers, String topic) {
        AvroTrust.ensure();
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrapServers);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        consumer = new KafkaConsumer<>(p);
        List<TopicPartition> partitions = consumer.partitionsFor(topic, Duration.ofSeconds(30)).stream()
                .map(i -> new TopicPartition(topic, i.partition())).toList();
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
    }

    /**
     * Reads until every id in {@code ids} has a completion or {@code timeout} passes.
     *
     * @return the first completion of each id read so far, in arrival order
     */
    public Map<String, Completion> awaitAll(Set<String> ids, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!firstById.keySet().containsAll(ids) && System.nanoTime() < deadline) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                Completion c = decode(r.value());
                firstById.putIfAbsent(c.getId(), c);
                read++;
            }
        }
        return new LinkedHashMap<>(firstById);
    }

    /** Completion records read, duplicates included. */
    public int recordsRead() {
        return read;
    }

    public static Completion decode(byte[] value) {
        try {
            if (PromptDecoder.isAvro(value)) {
                return Completion.getDecoder().decode(value);
            }
            JsonNode n = JSON.readTree(value);
            List<Integer> ids = new ArrayList<>();
            n.path("token_ids").forEach(t -> ids.add(t.intValue()));
            Map<String, String> meta = new HashMap<>();
            n.path("metadata").properties().forEach(e -> meta.put(e.getKey(), e.getValue().asText()));
            return Completion.newBuilder()
                    .setId(n.path("id").asText())
                    .setText(n.path("text").asText())
                    .setTokenIds(ids)
                    .setPromptTokens(n.path("prompt_tokens").asInt())
                    .setFinishReason(n.path("finish_reason").asText())
                    .setModel(n.path("model").asText())
                    .setSourceTopic(n.path("source_topic").asText())
                    .setSourcePartition(n.path("source_partition").asInt())
                    .setSourceOffset(n.path("source_offset").asLong())
                    .setQueuedMs(n.path("queued_ms").asLong())
                    .setBatchMs(n.path("batch_ms").asLong())
                    .setGenerationMs(n.path("generation_ms").asLong())
                    .setBatchId(n.path("batch_id").asLong())
                    .setBatchSize(n.path("batch_size").asInt())
                    .setPolicy(n.path("policy").isTextual() ? n.path("policy").asText() : null)
                    .setMetadata(meta)
                    .build();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        consumer.close();
    }
}
