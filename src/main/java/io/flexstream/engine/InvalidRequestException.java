package io.flexstream.engine;

/**
 * A request the engine refuses before any compute: the message names the problem, the reason classifies it (the
 * Kafka consumer turns it into a dead letter with that reason).
 */
public final class InvalidRequestException extends Exception {

    /** Why a request was refused. */
    public enum Reason {
        EMPTY_PROMPT,
        PROMPT_TOO_LONG,
        BAD_TOKEN_ID,
        BAD_PARAMETER
    }

    private final Reason reason;

    public InvalidRequestException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
