package io.flexstream.stream;

import io.flexstream.engine.GenerationRequest;
import org.apache.kafka.clients.consumer.ConsumerRecord;

import java.util.Map;

/**
 * A decoded prompt record on its way through the node: what the engine needs, what the completion must echo, and the
 * original record for a dead letter.
 *
 * @param origin        source coordinates and ownership epoch
 * @param source        the original record (key, value and headers go into a dead letter unchanged)
 * @param request       the generation request, its id resolved (prompt id, else record key, else coordinates)
 * @param metadata      the prompt's metadata, copied to the completion
 * @param receivedNanos {@link System#nanoTime()} when the poll thread handed the record on
 */
public record PromptRecord(RecordOrigin origin, ConsumerRecord<byte[], byte[]> source, GenerationRequest request,
                           Map<String, String> metadata, long receivedNanos) {

    public String id() {
        return request.id();
    }
}
