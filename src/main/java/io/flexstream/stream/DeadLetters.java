package io.flexstream.stream;

import io.flexstream.stream.avro.DeadLetter;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Answers a prompt record that cannot be completed with a dead letter on {@code <input topic>.DLT}: the record's own
 * key, a {@link DeadLetter} Avro value (reason, error, source coordinates, original key and value bytes), and the
 * original headers plus {@code flexstream.error.*} and {@code flexstream.source.*} headers, so tools that read only
 * headers (kcat, Kafka UIs) see why. Like a completion, the dead letter makes its offset done once the broker
 * acknowledges it; a poison record therefore never stalls its partition.
 *
 * <p>Thread-safe; called from the poll thread (decoding failures) and the engine thread (validation and generation
 * failures).
 */
public final class DeadLetters {

    public static final String HEADER_REASON = "flexstream.error.reason";
    public static final String HEADER_CLASS = "flexstream.error.class";
    public static final String HEADER_MESSAGE = "flexstream.error.message";
    public static final String HEADER_TOPIC = "flexstream.source.topic";
    public static final String HEADER_PARTITION = "flexstream.source.partition";
    public static final String HEADER_OFFSET = "flexstream.source.offset";

    private static final Logger LOG = LoggerFactory.getLogger(DeadLetters.class);

    private final Producer<byte[], byte[]> producer;
    private final String topic;
    private final Acknowledgements acks;
    private final BinaryMessageEncoder<DeadLetter> encoder = DeadLetter.getEncoder();
    private final AtomicLong sent = new AtomicLong();
    private final StreamMetrics metrics;

    public DeadLetters(Producer<byte[], byte[]> producer, String topic, Acknowledgements acks) {
        this(producer, topic, acks, StreamMetrics.NONE);
    }

    public DeadLetters(Producer<byte[], byte[]> producer, String topic, Acknowledgements acks,
                       StreamMetrics metrics) {
        this.metrics = metrics;
        this.producer = producer;
        this.topic = topic;
        this.acks = acks;
    }

    /** Sends the dead letter of {@code source}; {@code promptId} may be null when it did not decode. */
    public void send(ConsumerRecord<byte[], byte[]> source, RecordOrigin origin, String promptId,
                     DeadLetterReason reason, Throwable error) {
        String message = error.getMessage() == null ? error.toString() : error.getMessage();
        Throwable cause = error instanceof RejectedRecordException && error.getCause() != null ? error.getCause() : error;
        DeadLetter letter = DeadLetter.newBuilder()
                .setReason(reason.wireName())
                .setErrorClass(cause.getClass().getName())
                .setErrorMessage(message)
                .setPromptId(promptId)
                .setSourceTopic(source.topic())
                .setSourcePartition(source.partition())
                .setSourceOffset(source.offset())
                .setSourceTimestamp(source.timestamp() < 0 ? null : Instant.ofEpochMilli(source.timestamp()))
                .setOriginalKey(source.key() == null ? null : ByteBuffer.wrap(source.key()))
                .setOriginalValue(source.value() == null ? null : ByteBuffer.wrap(source.value()))
                .setFailedAt(Instant.now())
                .build();
        RecordHeaders headers = new RecordHeaders();
        for (Header h : source.headers()) {
            headers.add(h);
        }
        headers.add(HEADER_REASON, utf8(reason.wireName()));
        headers.add(HEADER_CLASS, utf8(cause.getClass().getName()));
        headers.add(HEADER_MESSAGE, utf8(message));
        headers.add(HEADER_TOPIC, utf8(source.topic()));
        headers.add(HEADER_PARTITION, utf8(Integer.toString(source.partition())));
        headers.add(HEADER_OFFSET, utf8(Long.toString(source.offset())));
        ProducerRecord<byte[], byte[]> record = new ProducerRecord<>(topic, null, source.key(), encode(letter), headers);
        LOG.info("dead letter {} for {}-{}@{}{}: {}", reason.wireName(), source.topic(), source.partition(),
                source.offset(), promptId == null ? "" : " (id " + promptId + ")", message);
        sent.incrementAndGet();
        metrics.deadLetter(reason);
        try {
            producer.send(record, (metadata, e) -> {
                if (e == null) {
                    acks.add(origin, Acknowledgements.Kind.PUBLISHED);
                } else {
                    LOG.error("dead letter of {} was not published; the offset stays uncommitted: {}", origin,
                            e.toString());
                    acks.add(origin, Acknowledgements.Kind.FAILED);
                }
            });
        } catch (RuntimeException e) {
            // The producer refuses at once only when closing or for an invalid record: never let that stop a thread.
            LOG.error("cannot send the dead letter of {}; the offset stays uncommitted: {}", origin, e.toString());
            acks.add(origin, Acknowledgements.Kind.FAILED);
        }
    }

    /** Dead letters sent by this node since it started. */
    public long sentCount() {
        return sent.get();
    }

    private byte[] encode(DeadLetter letter) {
        try {
            ByteBuffer buffer = encoder.encode(letter);
            byte[] bytes = new byte[buffer.remaining()];
            buffer.get(bytes);
            return bytes;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
