package io.flexstream.stream;

import io.flexstream.engine.InvalidRequestException;

import java.util.Locale;

/** Why a prompt record went to the dead-letter topic; {@link #wireName()} is the {@code reason} field's value. */
public enum DeadLetterReason {
    /** The record has no value (a tombstone). */
    NULL_VALUE,
    /** The value is neither Avro single-object encoding nor a JSON object, or a field has the wrong type. */
    UNDECODABLE,
    /** Avro single-object encoding whose schema fingerprint this node does not know. */
    UNKNOWN_SCHEMA,
    /** No prompt text and no prompt token ids (or an empty one). */
    EMPTY_PROMPT,
    /** The prompt leaves no room for one new token in the model's context. */
    PROMPT_TOO_LONG,
    /** A prompt token id outside the model's vocabulary. */
    BAD_TOKEN_ID,
    /** A sampling parameter outside its allowed range. */
    BAD_PARAMETER,
    /** The engine threw on this record alone (after bisecting its batch). */
    GENERATION_FAILED;

    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    static DeadLetterReason of(InvalidRequestException.Reason reason) {
        return switch (reason) {
            case EMPTY_PROMPT -> EMPTY_PROMPT;
            case PROMPT_TOO_LONG -> PROMPT_TOO_LONG;
            case BAD_TOKEN_ID -> BAD_TOKEN_ID;
            case BAD_PARAMETER -> BAD_PARAMETER;
        };
    }
}
