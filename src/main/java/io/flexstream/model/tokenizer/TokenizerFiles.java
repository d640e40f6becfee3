package io.flexstream.model.tokenizer;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a Hugging Face tokenizer directory into a {@link Gpt2Tokenizer}. Two layouts hold the same model:
 * vocab.json + merges.txt (what the slow GPT2Tokenizer reads, and what OPT's repositories ship; preferred when
 * present) or tokenizer.json (the fast tokenizer's single file). Either way tokenizer_config.json and
 * special_tokens_map.json, when present, name the special tokens and set add_bos_token; special_tokens_map.json
 * wins where both name a token, as in transformers' from_pretrained.
 */
final class TokenizerFiles {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** What the model files say, before the config files are applied. */
    private record Model(Map<String, Integer> vocab, List<Merge> merges, String vocabName,
                         Map<String, Integer> added, Set<String> addedSpecial,
                         Boolean addBos, Boolean addPrefixSpace) {
    }

    private TokenizerFiles() {
    }

    static Gpt2Tokenizer read(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new TokenizerException(dir + ": tokenizer directory does not exist");
        }
        Path vocabFile = dir.resolve("vocab.json");
        Path mergesFile = dir.resolve("merges.txt");
        Path tokenizerJson = dir.resolve("tokenizer.json");
        Model model;
        if (Files.exists(vocabFile) || Files.exists(mergesFile)) {
            model = readVocabAndMerges(dir, vocabFile, mergesFile);
        } else if (Files.exists(tokenizerJson)) {
            model = readTokenizerJson(tokenizerJson);
        } else {
            throw new TokenizerException(dir + ": no tokenizer files: expected vocab.json and merges.txt,"
                    + " or tokenizer.json");
        }
        Path configFile = dir.resolve("tokenizer_config.json");
        Path mapFile = dir.resolve("special_tokens_map.json");
        JsonNode config = readJson(configFile, false);
        JsonNode map = readJson(mapFile, false);

        Map<String, Integer> literal = new LinkedHashMap<>(model.added());
        Set<Integer> special = new HashSet<>();
        for (String content : model.addedSpecial()) {
            special.add(model.added().get(content));
        }
        readAddedTokensDecoder(config, configFile, literal, special);

        SpecialTokenNames names = new SpecialTokenNames(model.vocab(), model.vocabName(), literal, config, configFile,
                map, mapFile);
        int bos = names.resolve("bos_token", "</s>", "<|endoftext|>");
        int eos = names.resolve("eos_token", "</s>", "<|endoftext|>");
        int unk = names.resolve("unk_token", "<unk>", "<|endoftext|>");
        int pad = names.resolve("pad_token", "<pad>");
        for (int id : new int[] {bos, eos, unk, pad}) {
            if (id >= 0) {
                special.add(id);
            }
        }
        special.addAll(names.additionalSpecial());
        literal.putAll(names.namedLiterals());

        SpecialTokens specials = new SpecialTokens(bos, eos, pad, unk, literal, special);
        BpeModel bpe = new BpeModel(model.vocab(), model.merges(), unk, model.vocabName());
        boolean addBos = config.path("add_bos_token").isBoolean() ? config.get("add_bos_token").asBoolean()
                : model.addBos() != null ? model.addBos() : true; // OPT's default; GPT-2's own files say false
        boolean addPrefixSpace = config.path("add_prefix_space").isBoolean()
                ? config.get("add_prefix_space").asBoolean()
                : model.addPrefixSpace() != null && model.addPrefixSpace();
        // transformers used to default this to true; OPT's config does not ask for it and it breaks round trips,
        // so only an explicit true turns it on.
        boolean cleanUp = config.path("clean_up_tokenization_spaces").asBoolean(false);
        return new Gpt2Tokenizer(bpe, tokenBytes(model.vocab(), literal), specials, addBos, addPrefixSpace, cleanUp);
    }

    /** Per id, the bytes it decodes to: vocabulary tokens through the byte alphabet, added tokens as written. */
    private static byte[][] tokenBytes(Map<String, Integer> vocab, Map<String, Integer> literal) {
        int size = 0;
        for (int id : vocab.values()) {
            size = Math.max(size, id + 1);
        }
        for (int id : literal.values()) {
            size = Math.max(size, id + 1);
        }
        byte[][] bytes = new byte[size][];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            bytes[e.getValue()] = unspell(e.getKey());
        }
        for (Map.Entry<String, Integer> e : literal.entrySet()) {
            bytes[e.getValue()] = e.getKey().getBytes(StandardCharsets.UTF_8);
        }
        return bytes;
    }

    /** Byte-level spelling back to bytes; a character outside the byte alphabet stands for its own UTF-8. */
    private static byte[] unspell(String token) {
        byte[] out = new byte[token.length() * 3];
        int n = 0;
        for (int i = 0; i < token.length(); i++) {
            int b = ByteAlphabet.byteOf(token.charAt(i));
            if (b >= 0) {
                out[n++] = (byte) b;
            } else {
                byte[] own = String.valueOf(token.charAt(i)).getBytes(StandardCharsets.UTF_8);
                System.arraycopy(own, 0, out, n, own.length);
                n += own.length;
            }
        }
        return java.util.Arrays.copyOf(out, n);
    }

    private static Model readVocabAndMerges(Path dir, Path vocabFile, Path mergesFile) {
        Map<String, Integer> vocab = vocabOf(readJson(vocabFile, true), vocabFile.toString());
        List<Merge> merges = readMerges(mergesFile);
        Map<String, Integer> added = new LinkedHashMap<>();
        Path addedFile = dir.resolve("added_tokens.json");
        JsonNode addedJson = readJson(addedFile, false);
        if (!addedJson.isMissingNode()) {
            added.putAll(vocabOf(addedJson, addedFile.toString()));
        }
        return new Model(vocab, merges, "vocab.json", added, Set.of(), null, null);
    }

    private static List<Merge> readMerges(Path file) {
        if (!Files.exists(file)) {
            throw new TokenizerException(file + ": missing (vocab.json needs its merges.txt beside it)");
        }
        List<Merge> merges = new ArrayList<>(50_000);
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            int lineNo = 0;
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                lineNo++;
                if ((lineNo == 1 && line.startsWith("#")) || line.isBlank()) {
                    continue; // "#version: 0.2", and the empty last line
                }
                String[] parts = line.strip().split(" ");
                if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
                    throw new TokenizerException(file + " line " + lineNo
                            + ": expected two tokens separated by one space, got '" + line + "'");
                }
                merges.add(new Merge(parts[0], parts[1], file + " line " + lineNo));
            }
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read (" + e + ")", e);
        }
        return merges;
    }

    private static Model readTokenizerJson(Path file) {
        JsonNode root = readJson(file, true);
        JsonNode model = root.path("model");
        if (!model.isObject()) {
            throw new TokenizerException(file + ": no \"model\" object");
        }
        String type = model.path("type").asText("BPE");
        if (!type.equals("BPE")) {
            throw new TokenizerException(file + ": model.type is " + type + ", only BPE is supported");
        }
        Map<String, Integer> vocab = vocabOf(model.path("vocab"), file + " model.vocab");
        JsonNode mergesNode = model.path("merges");
        if (!mergesNode.isArray()) {
            throw new TokenizerException(file + ": model.merges is missing or not an array");
        }
        List<Merge> merges = new ArrayList<>(mergesNode.size());
        for (int i = 0; i < mergesNode.size(); i++) {
            JsonNode m = mergesNode.get(i);
            String where = file + " model.merges[" + i + "]";
            // Older files write "a b"; newer ones ["a", "b"], which allows spaces inside tokens.
            String[] parts = m.isTextual() ? m.asText().split(" ", -1)
                    : m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()
                    ? new String[] {m.get(0).asText(), m.get(1).asText()} : null;
            if (parts == null || parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
                throw new TokenizerException(where + ": expected \"a b\" or [\"a\", \"b\"], got " + m);
            }
            merges.add(new Merge(parts[0], parts[1], where));
        }
        Map<String, Integer> added = new LinkedHashMap<>();
        Set<String> addedSpecial = new HashSet<>();
        JsonNode addedTokens = root.path("added_tokens");
        for (int i = 0; i < addedTokens.size(); i++) {
            JsonNode t = addedTokens.get(i);
            if (!t.path("content").isTextual() || !t.path("id").canConvertToInt() || t.path("id").asInt() < 0) {
                throw new TokenizerException(file + " added_tokens[" + i + "]: needs \"id\" and \"content\"");
            }
            added.put(t.get("content").asText(), t.get("id").asInt());
            if (t.path("special").asBoolean(false)) {
                addedSpecial.add(t.get("content").asText());
            }
        }
        return new Model(vocab, merges, "tokenizer.json model.vocab", added, addedSpecial,
                addsBos(root.path("post_processor")), addsPrefixSpace(root.path("pre_tokenizer")));
    }

    /** Whether the fast tokenizer's post-processor puts a special token first; null when it does not say. */
    private static Boolean addsBos(JsonNode processor) {
        switch (processor.path("type").asText("")) {
            case "TemplateProcessing" -> {
                return processor.path("single").path(0).has("SpecialToken");
            }
            case "ByteLevel" -> {
                return false;
            }
            case "Sequence" -> {
                for (JsonNode p : processor.path("processors")) {
                    if (p.path("type").asText("").equals("TemplateProcessing")) {
                        return addsBos(p);
                    }
                }
                return false;
            }
            default -> {
                return null;
            }
        }
    }

    private static Boolean addsPrefixSpace(JsonNode preTokenizer) {
        if (preTokenizer.path("type").asText("").equals("ByteLevel")) {
            return preTokenizer.path("add_prefix_space").asBoolean(false);
        }
        for (JsonNode p : preTokenizer.path("pretokenizers")) {
            if (p.path("type").asText("").equals("ByteLevel")) {
                return p.path("add_prefix_space").asBoolean(false);
            }
        }
        return null;
    }

    /** transformers' newer configs list added tokens with their ids: {"50265": {"content": ..., "special": ...}}. */
    private static void readAddedTokensDecoder(JsonNode config, Path file, Map<String, Integer> literal,
                                               Set<Integer> special) {
        for (Map.Entry<String, JsonNode> e : config.path("added_tokens_decoder").properties()) {
            int id;
            try {
                id = Integer.parseInt(e.getKey());
            } catch (NumberFormatException ex) {
                throw new TokenizerException(file + " added_tokens_decoder: id '" + e.getKey() + "' is not a number");
            }
            JsonNode content = e.getValue().path("content");
            if (!content.isTextual() || id < 0) {
                throw new TokenizerException(file + " added_tokens_decoder." + e.getKey() + ": needs \"content\"");
            }
            literal.put(content.asText(), id);
            if (e.getValue().path("special").asBoolean(false)) {
                special.add(id);
            }
        }
    }

    static Map<String, Integer> vocabOf(JsonNode node, String where) {
        if (!node.isObject()) {
            throw new TokenizerException(where + ": expected a JSON object of token -> id");
        }
        Map<String, Integer> vocab = new LinkedHashMap<>(node.size() * 2);
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            JsonNode id = e.getValue();
            if (!id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0) {
                throw new TokenizerException(where + ": token '" + e.getKey() + "' has id " + id
                        + ", expected a non-negative integer");
            }
            vocab.put(e.getKey(), id.asInt());
        }
        return vocab;
    }

    /** The file's JSON, or a MissingNode when an optional file is absent. */
    static JsonNode readJson(Path file, boolean required) {
        if (!Files.exists(file)) {
            if (required) {
                throw new TokenizerException(file + ": missing");
            }
            return MissingNode.getInstance();
        }
        try {
            JsonNode node = JSON.readTree(file.toFile());
            if (node == null || !node.isObject()) {
                throw new TokenizerException(file + ": expected a JSON object");
            }
            return node;
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            String where = at == null ? "" : " at line " + at.getLineNr() + " column " + at.getColumnNr();
            throw new TokenizerException(file + ": malformed JSON" + where + ": " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read (" + e + ")", e);
        }
    }
}
