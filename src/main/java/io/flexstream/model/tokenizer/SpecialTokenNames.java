package io.flexstream.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Turns the special-token names of tokenizer_config.json and special_tokens_map.json into ids. A name may be a
 * string, an AddedToken object ({"content": "</s>", ...}) or null (no such token); special_tokens_map.json wins
 * over tokenizer_config.json, as in transformers. A name neither file gives falls back to the first default that
 * the vocabulary has, so that a bare vocab.json + merges.txt still gets OPT's (or GPT-2's) tokens.
 */
final class SpecialTokenNames {

    private final Map<String, Integer> vocab;
    private final String vocabName;
    private final Map<String, Integer> added;
    private final JsonNode config;
    private final Path configFile;
    private final JsonNode map;
    private final Path mapFile;
    private final Map<String, Integer> named = new LinkedHashMap<>();

    SpecialTokenNames(Map<String, Integer> vocab, String vocabName, Map<String, Integer> added, JsonNode config,
                      Path configFile, JsonNode map, Path mapFile) {
        this.vocab = vocab;
        this.vocabName = vocabName;
        this.added = added;
        this.config = config;
        this.configFile = configFile;
        this.map = map;
        this.mapFile = mapFile;
    }

    /** The id of the token named by {@code key}, or -1 when it is null or absent and no default is in the vocab. */
    int resolve(String key, String... defaults) {
        boolean inMap = map.has(key);
        JsonNode node = inMap ? map.get(key) : config.path(key);
        Path source = inMap ? mapFile : configFile;
        if (node.isMissingNode()) {
            for (String candidate : defaults) {
                Integer id = idOf(candidate);
                if (id != null) {
                    named.put(candidate, id);
                    return id;
                }
            }
            return -1;
        }
        if (node.isNull()) {
            return -1;
        }
        String content = contentOf(node, source, key);
        Integer id = idOf(content);
        if (id == null) {
            throw new TokenizerException(source + ": " + key + " '" + content + "' is not in " + vocabName);
        }
        named.put(content, id);
        return id;
    }

    /** Ids of additional_special_tokens (special_tokens_map.json first, else tokenizer_config.json). */
    Set<Integer> additionalSpecial() {
        String key = "additional_special_tokens";
        boolean inMap = map.has(key);
        JsonNode list = inMap ? map.get(key) : config.path(key);
        Path source = inMap ? mapFile : configFile;
        Set<Integer> ids = new HashSet<>();
        for (JsonNode node : list) {
            String content = contentOf(node, source, key);
            Integer id = idOf(content);
            if (id == null) {
                throw new TokenizerException(source + ": " + key + " '" + content + "' is not in " + vocabName);
            }
            named.put(content, id);
            ids.add(id);
        }
        return ids;
    }

    /** Text -> id of every token resolved so far, to be matched literally in input text. */
    Map<String, Integer> namedLiterals() {
        return named;
    }

    private Integer idOf(String content) {
        Integer id = added.get(content);
        return id != null ? id : vocab.get(content);
    }

    private static String contentOf(JsonNode node, Path source, String key) {
        if (node.isTextual()) {
            return node.asText();
        }
        if (node.path("content").isTextual()) {
            return node.get("content").asText();
        }
        throw new TokenizerException(source + ": " + key + " must be a string or {\"content\": ...}, got " + node);
    }
}
