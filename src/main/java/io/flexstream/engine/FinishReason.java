package io.flexstream.engine;

/** Why a sequence stopped: the names are the wire values of {@code finish_reason}. */
public enum FinishReason {
    /** {@code max_new_tokens} were generated. */
    LENGTH("length"),
    /** The text reached one of the request's stop strings. */
    STOP("stop"),
    /** The model produced its end-of-sequence token. */
    EOS("eos");

    private final String wireName;

    FinishReason(String wireName) {
        this.wireName = wireName;
    }

    public String wireName() {
        return wireName;
    }
}
