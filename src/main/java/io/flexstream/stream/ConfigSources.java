package io.flexstream.stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;

/**
 * Where a {@link StreamConfig} comes from, lowest precedence first: a file (.properties, or .yaml/.yml where nested
 * maps flatten to dotted keys: {@code kafka: {security.protocol: SSL}} is {@code kafka.security.protocol}), then
 * environment variables, then command-line flags.
 *
 * <p>Environment variables: {@code FLEXSTREAM_} + the key in upper case with dots as underscores, e.g.
 * {@code FLEXSTREAM_BATCH_SIZE}, {@code FLEXSTREAM_KAFKA_SASL_MECHANISM} ({@code kafka.sasl.mechanism}). Kafka keys use
 * only dots, so the mapping is unambiguous. The launcher's own variables (JAVA_OPTS, SKIP_BUILD, LOG_LEVEL,
 * KAFKA_LOG_LEVEL) are not configuration, and other unknown {@code FLEXSTREAM_} variables are ignored.
 */
public final class ConfigSources {

    private static final String PREFIX = "FLEXSTREAM_";
    private static final Set<String> NOT_CONFIG = Set.of("JAVA_OPTS", "SKIP_BUILD", "LOG_LEVEL", "KAFKA_LOG_LEVEL");

    private ConfigSources() {
    }

    /** Merges the three sources and validates the result; {@code file} may be null. */
    public static StreamConfig load(Path file, Map<String, String> env, Map<String, String> flags) {
        Map<String, String> merged = new TreeMap<>();
        if (file != null) {
            merged.putAll(readFile(file));
        }
        merged.putAll(fromEnvironment(env));
        flags.forEach((k, v) -> {
            if (v != null) {
                merged.put(k, v);
            }
        });
        return StreamConfig.fromMap(merged);
    }

    public static String envName(String key) {
        return PREFIX + key.toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_');
    }

    static Map<String, String> fromEnvironment(Map<String, String> env) {
        Map<String, String> out = new TreeMap<>();
        env.forEach((name, value) -> {
            if (!name.startsWith(PREFIX) || NOT_CONFIG.contains(name.substring(PREFIX.length()))) {
                return;
            }
            String key = name.substring(PREFIX.length()).toLowerCase(Locale.ROOT).replace('_', '.');
            if (StreamConfig.KEYS.contains(key) || key.startsWith("kafka.")) {
                out.put(key, value);
            }
        });
        return out;
    }

    static Map<String, String> readFile(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        try {
            if (name.endsWith(".yaml") || name.endsWith(".yml")) {
                Map<String, String> out = new TreeMap<>();
                JsonNode root = new ObjectMapper(new YAMLFactory()).readTree(file.toFile());
                if (root != null && !root.isMissingNode() && !root.isNull()) {
                    if (!root.isObject()) {
                        throw new IllegalArgumentException(file + ": a YAML config must be a mapping of keys");
                    }
                    flatten("", root, out);
                }
                return out;
            }
            Properties p = new Properties();
            try (Reader r = Files.newBufferedReader(file)) {
                p.load(r);
            }
            Map<String, String> out = new TreeMap<>();
            p.stringPropertyNames().forEach(k -> out.put(k, p.getProperty(k)));
            return out;
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read config file " + file + ": " + e.getMessage(), e);
        }
    }

    private static void flatten(String prefix, JsonNode node, Map<String, String> out) {
        if (node.isObject()) {
            for (Map.Entry<String, JsonNode> e : node.properties()) {
                flatten(prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey(), e.getValue(), out);
            }
        } else if (node.isArray()) {
            StringBuilder joined = new StringBuilder();
            for (JsonNode item : node) {
                joined.append(joined.isEmpty() ? "" : ",").append(item.asText());
            }
            out.put(prefix, joined.toString());
        } else if (!node.isNull()) {
            out.put(prefix, node.asText());
        }
    }
}
