package io.flexstream.view;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.flexstream.stream.CompletionReader;
import io.flexstream.stream.avro.Completion;
import io.flexstream.stream.avro.DeadLetter;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;

/**
 * The value formats of the view. Completions are read in whichever form the nodes publish (Avro single-object or JSON,
 * told apart by {@link CompletionReader#decode}) and written to the view's own topics and stores as Avro single-object,
 * the schema-described default. A value that does not decode becomes {@code null} with a warning instead of an
 * exception: one foreign record on the completions topic must not stop the view (the topology filters nulls).
 */
final class ViewSerdes {

    private static final Logger LOG = LoggerFactory.getLogger(ViewSerdes.class);
    static final ObjectMapper JSON = new ObjectMapper();

    private ViewSerdes() {
    }

    static Serde<Completion> completions() {
        Serializer<Completion> ser = (topic, c) -> c == null ? null : bytes(encode(c));
        Deserializer<Completion> de = (topic, data) -> {
            if (data == null) {
                return null;
            }
            try {
                return CompletionReader.decode(data);
            } catch (RuntimeException e) {
                LOG.warn("skipping a value on {} that is not a completion: {}", topic, e.toString());
                return null;
            }
        };
        return Serdes.serdeFrom(ser, de);
    }

    /** Dead letters are always Avro (see DeadLetters); read-only here. */
    static Serde<DeadLetter> deadLetters() {
        Serializer<DeadLetter> ser = (topic, d) -> {
            try {
                return d == null ? null : bytes(DeadLetter.getEncoder().encode(d));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
        Deserializer<DeadLetter> de = (topic, data) -> {
            if (data == null) {
                return null;
            }
            try {
                return DeadLetter.getDecoder().decode(data);
            } catch (IOException | RuntimeException e) {
                LOG.warn("skipping a value on {} that is not a dead letter: {}", topic, e.toString());
                return null;
            }
        };
        return Serdes.serdeFrom(ser, de);
    }

    /** JSON through Jackson, for the aggregates kept in state stores. */
    static <T> Serde<T> json(Class<T> type) {
        Serializer<T> ser = (topic, v) -> {
            try {
                return v == null ? null : JSON.writeValueAsBytes(v);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
        Deserializer<T> de = (topic, data) -> {
            try {
                return data == null ? null : JSON.readValue(data, type);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
        return Serdes.serdeFrom(ser, de);
    }

    private static ByteBuffer encode(Completion c) {
        try {
            return Completion.getEncoder().encode(c);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] bytes(ByteBuffer buffer) {
        byte[] out = new byte[buffer.remaining()];
        buffer.get(out);
        return out;
    }
}
