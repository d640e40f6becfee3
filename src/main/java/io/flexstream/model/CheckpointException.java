package io.flexstream.model;

/**
 * A checkpoint directory or file FlexStream cannot use: missing or misshaped tensors, truncated or malformed files,
 * unsupported architectures or dtypes. The message always names the file (or directory) and the problem, because it
 * is what an operator sees when {@code serve} refuses to start.
 */
public final class CheckpointException extends RuntimeException {

    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
