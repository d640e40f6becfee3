package io.flexstream.stream;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flexstream.engine.GenerationResult;
import io.flexstream.stream.avro.Completion;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;

/**
 * Sends completions to the output topic, keyed by the prompt id, through the shared idempotent producer
 * ({@code acks=all}, {@code enable.idempotence=true}, so broker-side retries never duplicate or reorder). A record is
 * done only when the broker acknowledges its completion: the send callback then reports it to
 * {@link Acknowledgements}, and only the poll thread turns that into a committable offset.
 *
 * <p>Thread-safe (the Kafka producer is); called from the engine thread.
 */
public final class CompletionPublisher {

    private static final Logger LOG = LoggerFactory.getLogger(CompletionPublisher.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Producer<byte[], byte[]> producer;
    private final String topic;
    private final StreamConfig.OutputFormat format;
    private final Acknowledgements acks;
    private final BinaryMessageEncoder<Completion> avro = Completion.getEncoder();

    public CompletionPublisher(Producer<byte[], byte[]> producer, String topic, StreamConfig.OutputFormat format,
                               Acknowledgements acks) {
        this.producer = producer;
        this.topic = topic;
        this.format = format;
        this.acks = acks;
    }

    /** Sends the completion of {@code prompt}; the acknowledgement arrives later on the producer's thread. */
    public void publish(PromptRecord prompt, GenerationResult result, String model, BlockStats block) {
        Completion completion = completion(prompt, result, model, block);
        byte[] key = prompt.id().getBytes(StandardCharsets.UTF_8);
        ProducerRecord<byte[], byte[]> record = new ProducerRecord<>(topic, null, key, encode(completion));
        RecordOrigin origin = prompt.origin();
        producer.send(record, (metadata, error) -> {
            if (error == null) {
                acks.add(origin, Acknowledgements.Kind.PUBLISHED);
            } else {
                LOG.error("completion of {} ({}) was not published; the offset stays uncommitted: {}",
                        prompt.id(), origin, error.toString());
                acks.add(origin, Acknowledgements.Kind.FAILED);
            }
        });
    }

    static Completion completion(PromptRecord prompt, GenerationResult result, String model, BlockStats block) {
        long nowMs = System.currentTimeMillis();
        long startWallMs = nowMs - (System.nanoTime() - block.startNanos()) / 1_000_000;
        return Completion.newBuilder()
                .setId(prompt.id())
                .setText(result.text())
                .setTokenIds(Arrays.stream(result.tokenIds()).boxed().toList())
                .setPromptTokens(result.promptTokens())
                .setFinishReason(result.finishReason().wireName())
                .setModel(model)
                .setSourceTopic(prompt.origin().partition().topic())
                .setSourcePartition(prompt.origin().partition().partition())
                .setSourceOffset(prompt.origin().offset())
                .setQueuedMs(Math.max(0, startWallMs - prompt.source().timestamp()))
                .setBatchMs(Math.max(0, (block.startNanos() - prompt.receivedNanos()) / 1_000_000))
                .setGenerationMs(block.generationMs())
                .setBatchId(block.batchId())
                .setBatchSize(block.batchSize())
                .setPolicy(block.policy())
                .setMetadata(prompt.metadata())
                .setCompletedAt(Instant.ofEpochMilli(nowMs))
                .build();
    }

    byte[] encode(Completion c) {
        if (format == StreamConfig.OutputFormat.JSON) {
            return toJson(c);
        }
        try {
            ByteBuffer buffer = avro.encode(c);
            byte[] bytes = new byte[buffer.remaining()];
            buffer.get(bytes);
            return bytes;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The JSON form uses the Avro field names, so a JSON consumer reads the same document the schema describes. */
    public static byte[] toJson(Completion c) {
        ObjectNode n = JSON.createObjectNode();
        n.put("id", c.getId());
        n.put("text", c.getText());
        ArrayNode ids = n.putArray("token_ids");
        List<Integer> tokenIds = c.getTokenIds();
        tokenIds.forEach(ids::add);
        n.put("prompt_tokens", c.getPromptTokens());
        n.put("finish_reason", c.getFinishReason());
        n.put("model", c.getModel());
        n.put("source_topic", c.getSourceTopic());
        n.put("source_partition", c.getSourcePartition());
        n.put("source_offset", c.getSourceOffset());
        n.put("queued_ms", c.getQueuedMs());
        n.put("batch_ms", c.getBatchMs());
        n.put("generation_ms", c.getGenerationMs());
        n.put("batch_id", c.getBatchId());
        n.put("batch_size", c.getBatchSize());
        n.put("policy", c.getPolicy());
        ObjectNode meta = n.putObject("metadata");
        c.getMetadata().forEach(meta::put);
        n.put("completed_at", c.getCompletedAt() == null ? null : c.getCompletedAt().toEpochMilli());
        try {
            return JSON.writeValueAsBytes(n);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
