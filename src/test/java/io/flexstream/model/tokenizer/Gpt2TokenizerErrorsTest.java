package io.flexstream.model.tokenizer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A broken checkpoint fails at load with a message that names the file, and the line where there is one. */
class Gpt2TokenizerErrorsTest {

    private static TokenizerException loadFails(Path dir) {
        return assertThrows(TokenizerException.class, () -> Gpt2Tokenizer.load(dir));
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), () -> "\"" + e.getMessage() + "\" should mention " + part);
        }
    }

    @Test
    void missingMergesTxt(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 300);
        Files.delete(dir.resolve("merges.txt"));
        assertMentions(loadFails(dir), "merges.txt", "missing");
    }

    @Test
    void missingVocabJson(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 300);
        Files.delete(dir.resolve("vocab.json"));
        assertMentions(loadFails(dir), "vocab.json", "missing");
    }

    @Test
    void noTokenizerFilesAtAll(@TempDir Path dir) {
        assertMentions(loadFails(dir), dir.toString(), "vocab.json", "tokenizer.json");
        assertMentions(loadFails(dir.resolve("absent")), "absent", "does not exist");
    }

    @Test
    void mergeWhoseResultIsNotInTheVocabulary(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 260); // bytes only: "q" and "z" exist, "qz" does not
        Files.writeString(dir.resolve("merges.txt"), "q z\n", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        assertMentions(loadFails(dir), "merges.txt line 2", "'qz'", "vocab.json", "mismatch");
    }

    @Test
    void mergeWhosePieceIsNotInTheVocabulary(@TempDir Path dir) throws IOException {
        Gpt2TestFiles.writeGpt2(dir);
        Files.writeString(dir.resolve("merges.txt"), "Ġthe ☃\n", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        assertMentions(loadFails(dir), "merges.txt line 50002", "piece '☃'");
    }

    @Test
    void mergeLineWithoutTwoTokens(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 300);
        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\na b c\n");
        assertMentions(loadFails(dir), "merges.txt line 2", "two tokens");
    }

    @Test
    void malformedVocabJson(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 300);
        Files.writeString(dir.resolve("vocab.json"), "{\"a\": 4,\n \"b\": }");
        assertMentions(loadFails(dir), "vocab.json", "malformed JSON", "line 2");
    }

    @Test
    void vocabIdThatIsNotANumber(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 300);
        Files.writeString(dir.resolve("vocab.json"), "{\"a\": \"four\"}");
        assertMentions(loadFails(dir), "vocab.json", "'a'", "non-negative integer");
    }

    @Test
    void malformedConfigJson(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 300);
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"add_bos_token\": tru");
        assertMentions(loadFails(dir), "tokenizer_config.json", "malformed JSON");
    }

    @Test
    void specialTokenNotInTheVocabulary(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 300);
        Files.writeString(dir.resolve("special_tokens_map.json"), "{\"eos_token\": {\"content\": \"<eos>\"}}");
        assertMentions(loadFails(dir), "special_tokens_map.json", "eos_token", "'<eos>'");
    }

    @Test
    void tokenizerJsonWithUnknownMergePiece(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), """
                {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", ["ab", "c"]]}}
                """);
        assertMentions(loadFails(dir), "tokenizer.json model.merges[1]", "'c'");
    }

    @Test
    void tokenizerJsonOfAnotherModelType(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
        assertMentions(loadFails(dir), "tokenizer.json", "WordPiece");
    }
}
