package io.flexstream.engine;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.ArrayList;
import java.util.List;

/**
 * Parses one JSON line of a prompts file ({@code generate --input}) into a request. Fields: {@code id} and either
 * {@code prompt} or {@code prompt_token_ids}, plus optional {@code max_new_tokens}, {@code temperature},
 * {@code top_p}, {@code top_k}, {@code seed}, {@code stop} (a string or a list of strings). Missing sampling fields
 * take the given defaults.
 */
public final class PromptLine {

    private static final ObjectMapper JSON = new ObjectMapper();

    private PromptLine() {
    }

    /** Thrown for a line that is not a usable prompt; {@code id} is the line's id when it could be read. */
    public static final class BadLineException extends Exception {
        private final String id;

        BadLineException(String id, String message) {
            super(message);
            this.id = id;
        }

        public String id() {
            return id;
        }
    }

    public static GenerationRequest parse(String line, String fallbackId, SamplingParams defaults)
            throws BadLineException {
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new BadLineException(fallbackId, "not valid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw new BadLineException(fallbackId, "expected a JSON object per line");
        }
        String id = node.hasNonNull("id") ? node.get("id").asText() : fallbackId;
        String prompt = null;
        int[] ids = null;
        if (node.hasNonNull("prompt")) {
            if (!node.get("prompt").isTextual()) {
                throw new BadLineException(id, "prompt must be a string");
            }
            prompt = node.get("prompt").asText();
        }
        if (node.hasNonNull("prompt_token_ids")) {
            JsonNode array = node.get("prompt_token_ids");
            if (!array.isArray()) {
                throw new BadLineException(id, "prompt_token_ids must be an array of integers");
            }
            ids = new int[array.size()];
            for (int i = 0; i < ids.length; i++) {
                if (!array.get(i).canConvertToInt()) {
                    throw new BadLineException(id, "prompt_token_ids[" + i + "] is not an integer");
                }
                ids[i] = array.get(i).asInt();
            }
        }
        if (prompt == null && ids == null) {
            throw new BadLineException(id, "a line needs 'prompt' (text) or 'prompt_token_ids'");
        }
        SamplingParams sampling = new SamplingParams(
                intField(node, "max_new_tokens", defaults.maxNewTokens(), id),
                (float) doubleField(node, "temperature", defaults.temperature(), id),
                (float) doubleField(node, "top_p", defaults.topP(), id),
                intField(node, "top_k", defaults.topK(), id),
                node.hasNonNull("seed") ? longField(node, "seed", id) : defaults.seed(),
                node.hasNonNull("stop") ? stops(node.get("stop"), id) : defaults.stop());
        return new GenerationRequest(id, prompt, ids, sampling);
    }

    private static int intField(JsonNode node, String name, int fallback, String id) throws BadLineException {
        if (!node.hasNonNull(name)) {
            return fallback;
        }
        if (!node.get(name).canConvertToInt()) {
            throw new BadLineException(id, name + " must be an integer");
        }
        return node.get(name).asInt();
    }

    private static long longField(JsonNode node, String name, String id) throws BadLineException {
        if (!node.get(name).canConvertToLong()) {
            throw new BadLineException(id, name + " must be an integer");
        }
        return node.get(name).asLong();
    }

    private static double doubleField(JsonNode node, String name, double fallback, String id)
            throws BadLineException {
        if (!node.hasNonNull(name)) {
            return fallback;
        }
        if (!node.get(name).isNumber()) {
            throw new BadLineException(id, name + " must be a number");
        }
        return node.get(name).asDouble();
    }

    private static List<String> stops(JsonNode node, String id) throws BadLineException {
        List<String> out = new ArrayList<>();
        if (node.isTextual()) {
            out.add(node.asText());
        } else if (node.isArray()) {
            for (JsonNode s : node) {
                if (!s.isTextual()) {
                    throw new BadLineException(id, "stop must be a string or a list of strings");
                }
                out.add(s.asText());
            }
        } else {
            throw new BadLineException(id, "stop must be a string or a list of strings");
        }
        return out;
    }
}
