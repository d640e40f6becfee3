package io.flexstream.stream;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flexstream.engine.GenerationRequest;
import io.flexstream.engine.InvalidRequestException;
import io.flexstream.engine.SamplingParams;
import io.flexstream.stream.avro.Prompt;
import org.apache.avro.AvroRuntimeException;
import org.apache.avro.message.BadHeaderException;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.MissingSchemaException;
import org.apache.kafka.clients.consumer.ConsumerRecord;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a prompt record's value into a {@link PromptRecord}, or rejects it with the dead-letter reason. The wire format
 * is recognised by its first bytes: {@code C3 01} is Avro single-object encoding (then an 8-byte schema fingerprint),
 * a {@code '{'} after optional whitespace is a JSON object with the Avro field names
 * ({@code {"id":"1","prompt":"Hello","max_new_tokens":16}}), anything else is undecodable.
 *
 * <p>Only the model-independent checks happen here (the value decodes, a prompt is present, sampling parameters are in
 * range); prompt length and token ids need the model and are checked by {@code Generator.prepare} on the engine
 * thread. Used by the poll thread only.
 */
public final class PromptDecoder {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final BinaryMessageDecoder<Prompt> avro;
    private final int defaultMaxNewTokens;

    /** @param defaultMaxNewTokens used when a prompt leaves {@code max_new_tokens} unset */
    public PromptDecoder(int defaultMaxNewTokens) {
        AvroTrust.ensure();
        this.avro = Prompt.getDecoder();
        this.defaultMaxNewTokens = defaultMaxNewTokens;
    }

    public PromptRecord decode(ConsumerRecord<byte[], byte[]> record, RecordOrigin origin)
            throws RejectedRecordException {
        byte[] value = record.value();
        if (value == null) {
            throw new RejectedRecordException(DeadLetterReason.NULL_VALUE, "the record has no value (null)");
        }
        Prompt prompt = isAvro(value) ? decodeAvro(value) : decodeJson(value);
        String id = resolveId(prompt.getId(), record);
        SamplingParams sampling = sampling(prompt);
        GenerationRequest request = request(id, prompt, sampling);
        Map<String, String> metadata = prompt.getMetadata() == null ? Map.of() : Map.copyOf(prompt.getMetadata());
        return new PromptRecord(origin, record, request, metadata, System.nanoTime());
    }

    static boolean isAvro(byte[] value) {
        return value.length >= 2 && value[0] == (byte) 0xC3 && value[1] == (byte) 0x01;
    }

    private Prompt decodeAvro(byte[] value) throws RejectedRecordException {
        try {
            return avro.decode(value);
        } catch (MissingSchemaException e) {
            throw new RejectedRecordException(DeadLetterReason.UNKNOWN_SCHEMA,
                    "Avro single-object value with an unknown schema fingerprint: " + e.getMessage(), e);
        } catch (BadHeaderException e) {
            throw new RejectedRecordException(DeadLetterReason.UNDECODABLE, "bad Avro header: " + e.getMessage(), e);
        } catch (IOException | AvroRuntimeException | IndexOutOfBoundsException | NegativeArraySizeException e) {
            throw new RejectedRecordException(DeadLetterReason.UNDECODABLE,
                    "cannot decode the Avro Prompt: " + e, e);
        }
    }

    private Prompt decodeJson(byte[] value) throws RejectedRecordException {
        int first = 0;
        while (first < value.length && Character.isWhitespace(value[first])) {
            first++;
        }
        if (first == value.length || value[first] != '{') {
            throw new RejectedRecordException(DeadLetterReason.UNDECODABLE,
                    "value is neither Avro single-object encoding (C3 01 ...) nor a JSON object ("
                            + value.length + " bytes, starting " + preview(value) + ")");
        }
        JsonNode node;
        try {
            node = JSON.readTree(value);
        } catch (IOException e) {
            throw new RejectedRecordException(DeadLetterReason.UNDECODABLE, "malformed JSON: "
                    + (e instanceof JacksonException je ? je.getOriginalMessage() : e.getMessage()), e);
        }
        return JsonPrompt.read(node);
    }

    private static String resolveId(String promptId, ConsumerRecord<byte[], byte[]> record) {
        if (promptId != null && !promptId.isEmpty()) {
            return promptId;
        }
        if (record.key() != null && record.key().length > 0) {
            return new String(record.key(), StandardCharsets.UTF_8);
        }
        return record.topic() + "-" + record.partition() + "-" + record.offset();
    }

    private SamplingParams sampling(Prompt p) throws RejectedRecordException {
        SamplingParams params = new SamplingParams(
                p.getMaxNewTokens() == null ? defaultMaxNewTokens : p.getMaxNewTokens(),
                p.getTemperature() == null ? 0f : p.getTemperature(),
                p.getTopP() == null ? 1f : p.getTopP(),
                p.getTopK() == null ? 0 : p.getTopK(),
                p.getSeed() == null ? 0L : p.getSeed(),
                p.getStop() == null ? List.of() : p.getStop());
        try {
            params.validate();
        } catch (InvalidRequestException e) {
            throw new RejectedRecordException(DeadLetterReason.of(e.reason()), e.getMessage(), e);
        }
        return params;
    }

    private static GenerationRequest request(String id, Prompt p, SamplingParams sampling)
            throws RejectedRecordException {
        boolean hasText = p.getPrompt() != null && !p.getPrompt().isEmpty();
        boolean hasIds = p.getPromptTokenIds() != null && !p.getPromptTokenIds().isEmpty();
        if (hasText && hasIds) {
            throw new RejectedRecordException(DeadLetterReason.BAD_PARAMETER,
                    "set exactly one of prompt and prompt_token_ids, not both");
        }
        if (hasIds) {
            int[] ids = p.getPromptTokenIds().stream().mapToInt(Integer::intValue).toArray();
            return GenerationRequest.tokens(id, ids, sampling);
        }
        if (hasText) {
            return GenerationRequest.text(id, p.getPrompt(), sampling);
        }
        throw new RejectedRecordException(DeadLetterReason.EMPTY_PROMPT,
                "the prompt is empty: neither prompt text nor prompt_token_ids given");
    }

    private static String preview(byte[] value) {
        StringBuilder hex = new StringBuilder();
        for (int i = 0; i < Math.min(8, value.length); i++) {
            hex.append(String.format("%02X", value[i] & 0xFF));
        }
        return hex.isEmpty() ? "(empty)" : hex.toString();
    }

    /** Reads the JSON form of a prompt into the generated Avro class, so both wire formats share one path. */
    private static final class JsonPrompt {

        static Prompt read(JsonNode node) throws RejectedRecordException {
            Prompt.Builder b = Prompt.newBuilder();
            b.setId(text(node, "id"));
            b.setPrompt(text(node, "prompt"));
            JsonNode ids = node.get("prompt_token_ids");
            if (ids != null && !ids.isNull()) {
                List<Integer> list = new ArrayList<>();
                for (JsonNode id : array(ids, "prompt_token_ids")) {
                    if (!id.canConvertToInt() || !id.isIntegralNumber()) {
                        throw wrongType("prompt_token_ids", "an array of integers");
                    }
                    list.add(id.intValue());
                }
                b.setPromptTokenIds(list);
            }
            b.setMaxNewTokens(integer(node, "max_new_tokens"));
            b.setTemperature(decimal(node, "temperature"));
            b.setTopP(decimal(node, "top_p"));
            b.setTopK(integer(node, "top_k"));
            JsonNode seed = node.get("seed");
            if (seed != null && !seed.isNull()) {
                if (!seed.isIntegralNumber() || !seed.canConvertToLong()) {
                    throw wrongType("seed", "an integer");
                }
                b.setSeed(seed.longValue());
            }
            List<String> stop = new ArrayList<>();
            JsonNode stopNode = node.get("stop");
            if (stopNode != null && stopNode.isTextual()) {
                stop.add(stopNode.textValue());
            } else if (stopNode != null && !stopNode.isNull()) {
                for (JsonNode s : array(stopNode, "stop")) {
                    if (!s.isTextual()) {
                        throw wrongType("stop", "a string or an array of strings");
                    }
                    stop.add(s.textValue());
                }
            }
            b.setStop(stop);
            b.setModel(text(node, "model"));
            Map<String, String> metadata = new HashMap<>();
            JsonNode meta = node.get("metadata");
            if (meta != null && !meta.isNull()) {
                if (!meta.isObject()) {
                    throw wrongType("metadata", "an object of strings");
                }
                for (Map.Entry<String, JsonNode> e : meta.properties()) {
                    metadata.put(e.getKey(), e.getValue().isTextual() ? e.getValue().textValue() : e.getValue().toString());
                }
            }
            b.setMetadata(metadata);
            JsonNode created = node.get("created_at");
            if (created != null && !created.isNull()) {
                if (!created.isIntegralNumber()) {
                    throw wrongType("created_at", "milliseconds since the epoch");
                }
                b.setCreatedAt(java.time.Instant.ofEpochMilli(created.longValue()));
            }
            return b.build();
        }

        private static String text(JsonNode node, String field) throws RejectedRecordException {
            JsonNode v = node.get(field);
            if (v == null || v.isNull()) {
                return null;
            }
            if (v.isTextual()) {
                return v.textValue();
            }
            if ("id".equals(field) && v.isIntegralNumber()) {
                return v.asText();
            }
            throw wrongType(field, "a string");
        }

        private static Integer integer(JsonNode node, String field) throws RejectedRecordException {
            JsonNode v = node.get(field);
            if (v == null || v.isNull()) {
                return null;
            }
            if (!v.isIntegralNumber() || !v.canConvertToInt()) {
                throw wrongType(field, "a 32-bit integer");
            }
            return v.intValue();
        }

        private static Float decimal(JsonNode node, String field) throws RejectedRecordException {
            JsonNode v = node.get(field);
            if (v == null || v.isNull()) {
                return null;
            }
            if (!v.isNumber()) {
                throw wrongType(field, "a number");
            }
            return v.floatValue();
        }

        private static JsonNode array(JsonNode v, String field) throws RejectedRecordException {
            if (!v.isArray()) {
                throw wrongType(field, "an array");
            }
            return v;
        }

        private static RejectedRecordException wrongType(String field, String expected) {
            return new RejectedRecordException(DeadLetterReason.UNDECODABLE, field + " must be " + expected);
        }
    }
}
