package io.flexstream.model.tokenizer;

import java.nio.file.Path;

/** TEMPORARY stand-in so the checkpoint branch compiles until the tokenizer branch is merged. Reverted before merge. */
public final class OptVocabularyWriter {
    private OptVocabularyWriter() {
    }

    public static void write(Path dir, int vocabSize) {
        throw new UnsupportedOperationException("stand-in: merge the tokenizer branch");
    }
}
