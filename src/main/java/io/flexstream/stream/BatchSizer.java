package io.flexstream.stream;

/**
 * Decides how many prompts of one padded prompt-length bucket make a batch. Today a fixed size
 * ({@link #fixed(int)}); the policy search plugs in the LP optimum per bucket, which is why the bucket is an argument.
 */
public interface BatchSizer {

    /** Target number of prompts in a batch whose prompts pad to {@code paddedPromptTokens}; at least 1. */
    int targetSize(int paddedPromptTokens);

    /** Short description stamped on every completion's {@code policy} field, e.g. {@code fixed(batch=8)}. */
    String describe();

    /** The description of one formed batch of {@code batchSize} prompts of a bucket; by default {@link #describe()}. */
    default String describe(int paddedPromptTokens, int batchSize) {
        return describe();
    }

    static BatchSizer fixed(int size) {
        if (size < 1) {
            throw new IllegalArgumentException("batch size must be at least 1, got " + size);
        }
        return new BatchSizer() {
            @Override
            public int targetSize(int paddedPromptTokens) {
                return size;
            }

            @Override
            public String describe() {
                return "fixed(batch=" + size + ")";
            }
        };
    }
}
