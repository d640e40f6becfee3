package io.flexstream.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** OPT's id convention as OptVocabularyWriter lays it out, truncated vocabularies, and tokenizer.json loading. */
class Gpt2TokenizerOptTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> TEXTS = List.of(
            "Hello world", "Hello, world!", "I'm don't", "12345 678 3.14159", "a   b", "line1\nline2\n\n  x\n",
            "🙂🙂 hi", "日本語のテキスト", "naïve café", "e\u0301\u0300", "The quick brown fox jumps over the lazy dog.",
            "  trailing  ", "x\u00a0y\u3000z", "");

    private static Path optDir;
    private static Gpt2Tokenizer opt;

    @BeforeAll
    static void writeOpt(@TempDir Path dir) throws IOException {
        optDir = dir.resolve("opt");
        OptVocabularyWriter.write(optDir, OptVocabularyWriter.FULL_VOCAB_SIZE);
        opt = Gpt2Tokenizer.load(optDir);
    }

    @Test
    void optSpecialTokensFollowFairseqOrder() {
        assertEquals(2, opt.bosId());
        assertEquals(2, opt.eosId());
        assertEquals(1, opt.padId());
        assertEquals(3, opt.unkId());
        assertEquals(4 + 50257, opt.vocabSize());
        assertTrue(opt.isSpecial(1) && opt.isSpecial(2) && opt.isSpecial(3));
        assertFalse(opt.isSpecial(0), "<s> is in OPT's vocabulary but is not one of its special tokens");
        assertFalse(opt.isSpecial(4));
        assertTrue(opt.addsBos());
    }

    @Test
    void optIdsAreGpt2IdsPlusFour() {
        assertArrayEquals(new int[] {15496 + 4, 995 + 4}, opt.encode("Hello world"));
        assertArrayEquals(new int[] {2, 15496 + 4, 995 + 4}, opt.encodePrompt("Hello world"));
        assertArrayEquals(new int[] {2}, opt.encodePrompt(""));
        for (String text : TEXTS) {
            int[] expected = Arrays.stream(Gpt2TestFiles.gpt2().encode(text)).map(id -> id + 4).toArray();
            assertArrayEquals(expected, opt.encode(text), () -> "OPT ids of " + text);
            assertEquals(text, opt.decode(opt.encodePrompt(text)));
        }
    }

    @Test
    void specialTokensInTextAreOneIdAndDecodeSkipsThem() {
        // "world" is GPT-2 6894, so 6898 in OPT; "</s>" written in the text is the special token, not BPE pieces.
        assertArrayEquals(new int[] {15500, 2, 6898}, opt.encode("Hello</s>world"));
        assertArrayEquals(new int[] {1, 3, 15500}, opt.encode("<pad><unk>Hello"));
        assertEquals("Hello world", opt.decode(new int[] {1, 1, 2, 15500, 999, 2, 3}));
        // <s> is no special token of OPT's tokenizer, so it is split by BPE and kept by decode.
        assertFalse(Arrays.stream(opt.encode("<s>")).anyMatch(id -> id == 0));
        assertEquals("<s>x", opt.decode(new int[] {0, 87 + 4}));
        // Ids beyond the tokenizer (OPT's embedding has 50272 rows) are skipped rather than failing.
        assertEquals("x", opt.decode(new int[] {87 + 4, 50270}));
    }

    @Test
    void writtenFilesHaveOptLayout() throws IOException {
        JsonNode vocab = JSON.readTree(optDir.resolve("vocab.json").toFile());
        assertEquals(0, vocab.get("<s>").asInt());
        assertEquals(1, vocab.get("<pad>").asInt());
        assertEquals(2, vocab.get("</s>").asInt());
        assertEquals(3, vocab.get("<unk>").asInt());
        assertEquals(4, vocab.get("!").asInt()); // GPT-2 id 0
        assertEquals(50256 + 4, vocab.get("<|endoftext|>").asInt());
        List<String> merges = Files.readAllLines(optDir.resolve("merges.txt"), StandardCharsets.UTF_8);
        assertTrue(merges.getFirst().startsWith("#version"));
        assertEquals(1 + 50_000, merges.size());
        JsonNode config = JSON.readTree(optDir.resolve("tokenizer_config.json").toFile());
        assertTrue(config.get("add_bos_token").asBoolean());
    }

    @Test
    void truncatedVocabularyStaysConsistent(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 1000);
        JsonNode vocab = JSON.readTree(dir.resolve("vocab.json").toFile());
        assertEquals(1000, vocab.size());
        List<String> lines = Files.readAllLines(dir.resolve("merges.txt"), StandardCharsets.UTF_8);
        assertTrue(lines.size() > 100 && lines.size() < 1000, "kept merges: " + lines.size());
        for (String line : lines.subList(1, lines.size())) {
            String[] pair = line.split(" ");
            assertTrue(vocab.has(pair[0]) && vocab.has(pair[1]) && vocab.has(pair[0] + pair[1]), line);
        }
        Gpt2Tokenizer small = Gpt2Tokenizer.load(dir);
        assertEquals(1000, small.vocabSize());
        Random random = new Random(1);
        for (int n = 0; n < 300; n++) {
            String text = Gpt2TokenizerRoundTripTest.randomText(random, 50);
            int[] ids = small.encodePrompt(text);
            assertTrue(Arrays.stream(ids).allMatch(id -> id >= 0 && id < 1000));
            assertEquals(text, small.decode(ids));
        }
        // " the" (GPT-2 262) survives the cut; " Hello" (18435) does not and falls apart into smaller pieces.
        assertArrayEquals(new int[] {262 + 4}, small.encode(" the"));
        assertTrue(small.encode(" Hello").length > 1);
    }

    @Test
    void smallestVocabularyIsBytesOnly(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, OptVocabularyWriter.MIN_VOCAB_SIZE);
        assertEquals(1, Files.readAllLines(dir.resolve("merges.txt")).size()); // the #version line only
        Gpt2Tokenizer bytes = Gpt2Tokenizer.load(dir);
        assertArrayEquals(new int[] {71 + 4, 72 + 4}, bytes.encode("hi")); // GPT-2's byte tokens 'h' 71, 'i' 72
        assertEquals("🙂 ok", bytes.decode(bytes.encode("🙂 ok")));
        IllegalArgumentException tooSmall = assertThrows(IllegalArgumentException.class,
                () -> OptVocabularyWriter.write(dir, 259));
        assertTrue(tooSmall.getMessage().contains("260") && tooSmall.getMessage().contains("259"),
                tooSmall.getMessage());
    }

    @Test
    void vocabSizeAboveGpt2WritesTheFullVocabulary(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 50272);
        assertEquals(OptVocabularyWriter.FULL_VOCAB_SIZE, Gpt2Tokenizer.load(dir).vocabSize());
    }

    @Test
    void tokenizerJsonGivesTheSameIds(@TempDir Path dir) throws IOException {
        for (boolean arrayMerges : new boolean[] {false, true}) {
            Path jsonDir = dir.resolve(arrayMerges ? "arrays" : "strings");
            Files.createDirectories(jsonDir);
            writeTokenizerJson(jsonDir, arrayMerges, true);
            Gpt2Tokenizer fast = Gpt2Tokenizer.load(jsonDir);
            assertEquals(opt.vocabSize(), fast.vocabSize());
            assertEquals(2, fast.bosId());
            assertEquals(2, fast.eosId());
            assertEquals(1, fast.padId());
            assertEquals(3, fast.unkId());
            assertTrue(fast.addsBos(), "TemplateProcessing puts </s> first");
            for (String text : TEXTS) {
                assertArrayEquals(opt.encodePrompt(text), fast.encodePrompt(text), () -> "tokenizer.json on " + text);
            }
            assertArrayEquals(opt.encode("a</s>b"), fast.encode("a</s>b"));
            assertEquals("Hello world", fast.decode(fast.encodePrompt("Hello world")));
        }
    }

    @Test
    void tokenizerJsonWithoutTemplateAddsNoBosAndConfigOverrides(@TempDir Path dir) throws IOException {
        writeTokenizerJson(dir, false, false);
        Gpt2Tokenizer plain = Gpt2Tokenizer.load(dir);
        assertFalse(plain.addsBos(), "a ByteLevel post-processor adds nothing");
        assertArrayEquals(plain.encode("Hello"), plain.encodePrompt("Hello"));
        // tokenizer_config.json's add_bos_token wins, and token names may be plain strings.
        Files.writeString(dir.resolve("tokenizer_config.json"),
                "{\"add_bos_token\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"pad_token\": null}");
        Gpt2Tokenizer configured = Gpt2Tokenizer.load(dir);
        assertEquals(0, configured.bosId());
        assertEquals(-1, configured.padId());
        assertArrayEquals(new int[] {0, 15496 + 4}, configured.encodePrompt("Hello"));
    }

    @Test
    void configCanTurnBosOff(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 2000);
        ObjectNode config = (ObjectNode) JSON.readTree(dir.resolve("tokenizer_config.json").toFile());
        config.put("add_bos_token", false);
        JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        Gpt2Tokenizer noBos = Gpt2Tokenizer.load(dir);
        assertArrayEquals(noBos.encode("Hello world"), noBos.encodePrompt("Hello world"));
        assertEquals(2, noBos.bosId());
    }

    /** A fast-tokenizer file holding the same model as {@link #optDir}'s vocab.json and merges.txt. */
    private static void writeTokenizerJson(Path dir, boolean arrayMerges, boolean template) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        ArrayNode added = root.putArray("added_tokens");
        String[] specials = {"<s>", "<pad>", "</s>", "<unk>"};
        for (int id = 0; id < specials.length; id++) {
            added.addObject().put("id", id).put("content", specials[id]).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", true).put("special", id > 0);
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", true);
        if (template) {
            ObjectNode post = root.putObject("post_processor");
            post.put("type", "TemplateProcessing");
            ArrayNode single = post.putArray("single");
            single.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
            single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
            post.putObject("special_tokens").putObject("</s>").put("id", "</s>").putArray("ids").add(2);
        } else {
            root.putObject("post_processor").put("type", "ByteLevel").put("add_prefix_space", true);
        }
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.put("unk_token", (String) null);
        model.set("vocab", JSON.readTree(optDir.resolve("vocab.json").toFile()));
        ArrayNode merges = model.putArray("merges");
        List<String> lines = Files.readAllLines(optDir.resolve("merges.txt"), StandardCharsets.UTF_8);
        for (String line : lines.subList(1, lines.size())) {
            if (arrayMerges) {
                String[] pair = line.split(" ");
                merges.addArray().add(pair[0]).add(pair[1]);
            } else {
                merges.add(line);
            }
        }
        JSON.writeValue(dir.resolve("tokenizer.json").toFile(), root);
        Set<String> names = new HashSet<>(List.of(dir.toFile().list()));
        assertEquals(Set.of("tokenizer.json"), names);
    }
}
