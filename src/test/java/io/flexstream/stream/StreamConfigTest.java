package io.flexstream.stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StreamConfigTest {

    private static Map<String, String> minimal() {
        Map<String, String> m = new HashMap<>();
        m.put("bootstrap.servers", "k:9092");
        m.put("input.topic", "in");
        m.put("output.topic", "out");
        return m;
    }

    @Test
    void defaults() {
        StreamConfig c = StreamConfig.fromMap(minimal());
        assertEquals("in.DLT", c.deadLetterTopic());
        assertEquals("flexstream", c.groupId());
        assertEquals(8, c.batchSize());
        assertEquals(16, c.maxBuffered());
        assertEquals(StreamConfig.OutputFormat.AVRO, c.outputFormat());
        assertEquals("classic", c.groupProtocol());
        assertNull(c.modelDir());
    }

    @Test
    void errorsNameTheKeyAndTheRange() {
        Map<String, String> m = minimal();
        m.put("batch.size", "0");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StreamConfig.fromMap(m));
        assertEquals("batch.size must be in [1, 65536], got 0", e.getMessage());
        m.put("batch.size", "lots");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> StreamConfig.fromMap(m)).getMessage()
                .startsWith("batch.size must be an integer"));
        m.remove("batch.size");
        m.put("output.format", "xml");
        assertEquals("output.format must be one of avro|json, got 'xml'",
                assertThrows(IllegalArgumentException.class, () -> StreamConfig.fromMap(m)).getMessage());
        m.remove("output.format");
        m.put("batch.sise", "4");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> StreamConfig.fromMap(m)).getMessage()
                .startsWith("unknown configuration key 'batch.sise'"));
        Map<String, String> missing = minimal();
        missing.remove("input.topic");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> StreamConfig.fromMap(missing)).getMessage()
                .contains("input.topic is required (flag --input-topic, environment variable FLEXSTREAM_INPUT_TOPIC"));
    }

    @Test
    void kafkaSettingsPassThroughButCannotBreakTheGuarantees() {
        Map<String, String> m = minimal();
        m.put("kafka.security.protocol", "SASL_SSL");
        m.put("kafka.consumer.fetch.min.bytes", "1024");
        m.put("kafka.producer.acks", "1");
        m.put("kafka.enable.auto.commit", "true");
        StreamConfig c = StreamConfig.fromMap(m);
        Properties consumer = c.consumerProperties("x");
        Properties producer = c.producerProperties("x");
        assertEquals("SASL_SSL", consumer.get("security.protocol"));
        assertEquals("SASL_SSL", producer.get("security.protocol"));
        assertEquals("SASL_SSL", c.adminProperties().get("security.protocol"));
        assertEquals("1024", consumer.get("fetch.min.bytes"));
        assertNull(producer.get("fetch.min.bytes"));
        assertEquals("false", consumer.get("enable.auto.commit"));
        assertEquals("all", producer.get("acks"));
        assertEquals("true", producer.get("enable.idempotence"));
    }

    @Test
    void fileThenEnvironmentThenFlags(@TempDir Path dir) throws Exception {
        Path yaml = dir.resolve("flexstream.yaml");
        Files.writeString(yaml, """
                bootstrap.servers: file:9092
                input:
                  topic: prompts
                output.topic: completions
                batch.size: 16
                linger.ms: 50
                kafka:
                  security.protocol: SSL
                  ssl.truststore.location: /etc/kafka/truststore.jks
                """);
        Map<String, String> env = Map.of("FLEXSTREAM_BATCH_SIZE", "32", "FLEXSTREAM_KAFKA_SASL_MECHANISM", "PLAIN",
                "FLEXSTREAM_JAVA_OPTS", "-Xmx1g", "FLEXSTREAM_KAFKA_LOG_LEVEL", "INFO", "PATH", "/bin");
        Map<String, String> flags = new HashMap<>();
        flags.put("bootstrap.servers", "flag:9092");
        flags.put("group.id", null);
        StreamConfig c = ConfigSources.load(yaml, env, flags);
        assertEquals("flag:9092", c.bootstrapServers());
        assertEquals("prompts", c.inputTopic());
        assertEquals(32, c.batchSize());
        assertEquals(50, c.lingerMs());
        assertEquals("flexstream", c.groupId());
        assertEquals(Map.of("security.protocol", "SSL", "ssl.truststore.location", "/etc/kafka/truststore.jks",
                "sasl.mechanism", "PLAIN"), c.kafka());

        Path props = dir.resolve("flexstream.properties");
        Files.writeString(props, "bootstrap.servers=p:9092\ninput.topic=a\noutput.topic=b\noutput.format=json\n");
        assertEquals(StreamConfig.OutputFormat.JSON, ConfigSources.load(props, Map.of(), Map.of()).outputFormat());
    }
}
