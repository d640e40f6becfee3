package io.flexstream.stream;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;

/**
 * Everything a FlexStream consumer node needs to know, typed and validated. Built from a flat map of dotted keys by
 * {@link #fromMap(Map)}; {@link ConfigSources} merges a properties or YAML file, {@code FLEXSTREAM_*} environment
 * variables and command-line flags into that map (later sources win).
 *
 * <p>Keys (defaults in brackets): {@code bootstrap.servers}, {@code input.topic}, {@code output.topic} (all three
 * required), {@code dlt.topic} [input.topic + ".DLT"], {@code group.id} [flexstream], {@code model.dir},
 * {@code batch.size} [8], {@code linger.ms} [200], {@code max.buffered} [2 x batch.size],
 * {@code output.format} [avro|json], {@code max.new.tokens} [32], {@code max.poll.interval.ms} [300000],
 * {@code poll.timeout.ms} [100], {@code commit.interval.ms} [1000], {@code shutdown.timeout.ms} [30000],
 * {@code group.protocol} [classic|consumer], {@code metrics.port} [9400; 0 turns the metrics and health endpoints
 * off].
 *
 * <p>Pass-through: {@code kafka.X} goes to every Kafka client as {@code X} (e.g. {@code kafka.security.protocol},
 * {@code kafka.sasl.jaas.config}); {@code kafka.consumer.X}, {@code kafka.producer.X} and {@code kafka.admin.X} go to
 * one client only. Any other unknown key is an error, so a typo never silently falls back to a default. The settings
 * the delivery guarantee rests on ({@code enable.auto.commit=false}, {@code enable.idempotence=true},
 * {@code acks=all}, byte-array serdes) cannot be overridden.
 */
public record StreamConfig(
        String bootstrapServers,
        String inputTopic,
        String outputTopic,
        String deadLetterTopic,
        String groupId,
        Path modelDir,
        int batchSize,
        long lingerMs,
        int maxBuffered,
        OutputFormat outputFormat,
        int maxNewTokens,
        int maxPollIntervalMs,
        long pollTimeoutMs,
        long commitIntervalMs,
        long shutdownTimeoutMs,
        String groupProtocol,
        int metricsPort,
        Map<String, String> kafka) {

    /** Wire format of completion values; dead letters are always Avro. */
    public enum OutputFormat { AVRO, JSON }

    static final Set<String> KEYS = Set.of("bootstrap.servers", "input.topic", "output.topic", "dlt.topic",
            "group.id", "model.dir", "batch.size", "linger.ms", "max.buffered", "output.format", "max.new.tokens",
            "max.poll.interval.ms", "poll.timeout.ms", "commit.interval.ms", "shutdown.timeout.ms", "group.protocol",
            "metrics.port");

    public StreamConfig {
        kafka = Map.copyOf(kafka);
    }

    /**
     * Parses and validates a flat map of keys.
     *
     * @throws IllegalArgumentException naming the key, the value and the allowed range
     */
    public static StreamConfig fromMap(Map<String, String> raw) {
        Map<String, String> kafka = new TreeMap<>();
        for (Map.Entry<String, String> e : raw.entrySet()) {
            if (e.getKey().startsWith("kafka.")) {
                kafka.put(e.getKey().substring("kafka.".length()), e.getValue());
            } else if (!KEYS.contains(e.getKey())) {
                throw new IllegalArgumentException("unknown configuration key '" + e.getKey() + "'; known keys: "
                        + String.join(", ", new java.util.TreeSet<>(KEYS)) + ", and kafka.* for the Kafka clients");
            }
        }
        Values v = new Values(raw);
        String input = v.required("input.topic");
        int batch = v.integer("batch.size", 8, 1, 65_536);
        return new StreamConfig(
                v.required("bootstrap.servers"),
                input,
                v.required("output.topic"),
                v.text("dlt.topic", input + ".DLT"),
                v.text("group.id", "flexstream"),
                v.text("model.dir", null) == null ? null : Path.of(v.text("model.dir", null)),
                batch,
                v.integer("linger.ms", 200, 0, 3_600_000),
                v.integer("max.buffered", 2 * batch, batch, 1_000_000),
                OutputFormat.valueOf(v.choice("output.format", "avro", "avro", "json").toUpperCase(Locale.ROOT)),
                v.integer("max.new.tokens", 32, 1, 1_000_000),
                v.integer("max.poll.interval.ms", 300_000, 1_000, Integer.MAX_VALUE),
                v.integer("poll.timeout.ms", 100, 10, 10_000),
                v.integer("commit.interval.ms", 1_000, 10, 600_000),
                v.integer("shutdown.timeout.ms", 30_000, 0, 3_600_000),
                v.choice("group.protocol", "classic", "classic", "consumer"),
                v.integer("metrics.port", 9400, 0, 65_535),
                kafka);
    }

    /** A copy in another consumer group. */
    public StreamConfig withGroupId(String group) {
        return new StreamConfig(bootstrapServers, inputTopic, outputTopic, deadLetterTopic, group, modelDir,
                batchSize, lingerMs, maxBuffered, outputFormat, maxNewTokens, maxPollIntervalMs, pollTimeoutMs,
                commitIntervalMs, shutdownTimeoutMs, groupProtocol, metricsPort, kafka);
    }

    public Properties consumerProperties(String clientId) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, Integer.toString(maxPollIntervalMs));
        // A poll hands on at most what the buffer can take, so the buffer overshoots its bound by less than one poll.
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, Integer.toString(Math.min(500, maxBuffered)));
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, groupProtocol);
        if (groupProtocol.equals("classic")) {
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());
        }
        p.putAll(passThrough("consumer"));
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return p;
    }

    public Properties producerProperties(String clientId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.putAll(passThrough("producer"));
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return p;
    }

    public Properties adminProperties() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrapServers);
        p.putAll(passThrough("admin"));
        return p;
    }

    /** {@code kafka.X} for every client, then {@code kafka.<client>.X} for this one. */
    private Map<String, String> passThrough(String client) {
        Map<String, String> out = new LinkedHashMap<>();
        String own = client + ".";
        kafka.forEach((k, val) -> {
            if (!k.startsWith("consumer.") && !k.startsWith("producer.") && !k.startsWith("admin.")) {
                out.put(k, val);
            }
        });
        kafka.forEach((k, val) -> {
            if (k.startsWith(own)) {
                out.put(k.substring(own.length()), val);
            }
        });
        return out;
    }

    /** Typed reads of the raw map with range checks; every message names the key. */
    private record Values(Map<String, String> raw) {

        String text(String key, String fallback) {
            String v = raw.get(key);
            return v == null || v.isBlank() ? fallback : v.trim();
        }

        String required(String key) {
            String v = text(key, null);
            if (v == null) {
                throw new IllegalArgumentException(key + " is required (flag --" + key.replace('.', '-')
                        + ", environment variable " + ConfigSources.envName(key) + ", or the config file)");
            }
            return v;
        }

        int integer(String key, int fallback, int min, int max) {
            String v = text(key, null);
            if (v == null) {
                return fallback;
            }
            long parsed;
            try {
                parsed = Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(key + " must be an integer in [" + min + ", " + max + "], got '"
                        + v + "'");
            }
            if (parsed < min || parsed > max) {
                throw new IllegalArgumentException(key + " must be in [" + min + ", " + max + "], got " + parsed);
            }
            return (int) parsed;
        }

        String choice(String key, String fallback, String... allowed) {
            String v = text(key, fallback).toLowerCase(Locale.ROOT);
            for (String a : allowed) {
                if (a.equals(v)) {
                    return v;
                }
            }
            throw new IllegalArgumentException(key + " must be one of " + String.join("|", allowed) + ", got '"
                    + v + "'");
        }
    }
}
