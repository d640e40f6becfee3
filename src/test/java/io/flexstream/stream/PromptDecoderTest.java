package io.flexstream.stream;

import io.flexstream.stream.avro.Prompt;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class PromptDecoderTest {

    private final PromptDecoder decoder = new PromptDecoder(32);
    private final RecordOrigin origin = new RecordOrigin(new TopicPartition("t", 0), 7, 1);

    private static ConsumerRecord<byte[], byte[]> record(String key, byte[] value) {
        return new ConsumerRecord<>("t", 0, 7, key == null ? null : key.getBytes(StandardCharsets.UTF_8), value);
    }

    private PromptRecord decode(String key, String json) throws RejectedRecordException {
        return decoder.decode(record(key, json.getBytes(StandardCharsets.UTF_8)), origin);
    }

    private DeadLetterReason rejected(String json) {
        return assertThrows(RejectedRecordException.class, () -> decode("k", json)).reason();
    }

    @Test
    void jsonWithEveryField() throws Exception {
        PromptRecord p = decode("key", """
                  {"id": 17, "prompt": "Hello", "max_new_tokens": 5, "temperature": 0.7, "top_p": 0.9,
                   "top_k": 40, "seed": 123, "stop": "\\n", "model": "opt-125m", "metadata": {"a": "b", "n": 1},
                   "created_at": 1700000000000}""");
        assertEquals("17", p.id());
        assertEquals("Hello", p.request().prompt());
        assertEquals(5, p.request().sampling().maxNewTokens());
        assertEquals(0.7f, p.request().sampling().temperature());
        assertEquals(0.9f, p.request().sampling().topP());
        assertEquals(40, p.request().sampling().topK());
        assertEquals(123L, p.request().sampling().seed());
        assertEquals(List.of("\n"), p.request().sampling().stop());
        assertEquals(Map.of("a", "b", "n", "1"), p.metadata());
    }

    @Test
    void defaultsAndIdFallbacks() throws Exception {
        PromptRecord p = decode("the-key", "{\"prompt_token_ids\": [2, 3, 4]}");
        assertEquals("the-key", p.id());
        assertNull(p.request().prompt());
        assertArrayEquals(new int[] {2, 3, 4}, p.request().promptTokenIds());
        assertEquals(32, p.request().sampling().maxNewTokens());
        assertEquals(0f, p.request().sampling().temperature(), "greedy by default");
        assertEquals("t-0-7", decode(null, "{\"prompt\": \"x\"}").id(), "no id, no key: coordinates");
    }

    @Test
    void avroSingleObjectEncoding() throws Exception {
        ByteBuffer buffer = Prompt.newBuilder().setId("a1").setPrompt("Bonjour").setStop(List.of("."))
                .build().toByteBuffer();
        byte[] bytes = new byte[buffer.remaining()];
        buffer.get(bytes);
        PromptRecord p = decoder.decode(record("k", bytes), origin);
        assertEquals("a1", p.id());
        assertEquals("Bonjour", p.request().prompt());
        assertEquals(List.of("."), p.request().sampling().stop());
    }

    @Test
    void badInputsAreRejectedWithTheirReason() {
        assertEquals(DeadLetterReason.NULL_VALUE,
                assertThrows(RejectedRecordException.class, () -> decoder.decode(record("k", null), origin)).reason());
        assertEquals(DeadLetterReason.UNDECODABLE, rejected("plain text"));
        assertEquals(DeadLetterReason.UNDECODABLE, rejected(""));
        assertEquals(DeadLetterReason.UNDECODABLE, rejected("{\"prompt\": "));
        assertEquals(DeadLetterReason.UNDECODABLE, rejected("{\"prompt\": 5}"));
        assertEquals(DeadLetterReason.UNDECODABLE, rejected("{\"prompt\": \"x\", \"max_new_tokens\": \"many\"}"));
        assertEquals(DeadLetterReason.EMPTY_PROMPT, rejected("{\"id\": \"1\"}"));
        assertEquals(DeadLetterReason.EMPTY_PROMPT, rejected("{\"prompt\": \"\", \"prompt_token_ids\": []}"));
        assertEquals(DeadLetterReason.BAD_PARAMETER, rejected("{\"prompt\": \"x\", \"top_p\": 0}"));
        assertEquals(DeadLetterReason.BAD_PARAMETER, rejected("{\"prompt\": \"x\", \"top_k\": -1}"));
        assertEquals(DeadLetterReason.BAD_PARAMETER, rejected("{\"prompt\": \"x\", \"stop\": [\"\"]}"));
        assertEquals(DeadLetterReason.BAD_PARAMETER, rejected("{\"prompt\": \"x\", \"prompt_token_ids\": [1]}"));
        byte[] unknown = {(byte) 0xC3, 0x01, 9, 9, 9, 9, 9, 9, 9, 9, 0};
        assertEquals(DeadLetterReason.UNKNOWN_SCHEMA,
                assertThrows(RejectedRecordException.class, () -> decoder.decode(record("k", unknown), origin))
                        .reason());
    }
}
