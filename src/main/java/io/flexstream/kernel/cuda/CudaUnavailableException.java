package io.flexstream.kernel.cuda;

/** The cuda backend was required but cannot run here; the message names the cause and the fix. */
public final class CudaUnavailableException extends RuntimeException {

    public CudaUnavailableException(String message) {
        super(message);
    }
}
