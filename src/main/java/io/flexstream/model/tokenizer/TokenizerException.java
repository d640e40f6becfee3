package io.flexstream.model.tokenizer;

/**
 * A tokenizer checkpoint that cannot be used: a missing file, malformed JSON, or vocabulary and merges that disagree.
 * The message always names the file (and the line or JSON path where one applies) so that an operator can fix it.
 *
 * <p>Unchecked on purpose: {@link Gpt2Tokenizer#load} is called once at start-up, where a bad checkpoint is fatal and
 * the caller has nothing better to do than report it; an I/O failure while reading is wrapped here too, with its cause.
 */
public final class TokenizerException extends RuntimeException {

    public TokenizerException(String message) {
        super(message);
    }

    public TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}
