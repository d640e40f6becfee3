package io.flexstream.stream;

/** A prompt record that cannot be completed; it becomes a dead letter with {@link #reason()}. */
public final class RejectedRecordException extends Exception {

    private final DeadLetterReason reason;

    public RejectedRecordException(DeadLetterReason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public RejectedRecordException(DeadLetterReason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public DeadLetterReason reason() {
        return reason;
    }
}
