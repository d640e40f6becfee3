package io.flexstream.engine;

/**
 * How the engine runs, independent of the model.
 *
 * @param maxBatchSize sequences generated together at most; a larger call is split, prompts of similar length
 *                     together
 * @param stopAtEos    false only for benchmarks, which must generate exactly gen-len tokens per sequence whatever a
 *                     random model says (FlexGen's benchmark does the same)
 */
public record EngineOptions(int maxBatchSize, boolean stopAtEos) {

    public static final int DEFAULT_MAX_BATCH_SIZE = 64;

    public EngineOptions {
        if (maxBatchSize < 1) {
            throw new IllegalArgumentException("maxBatchSize must be at least 1, got " + maxBatchSize);
        }
    }

    public static EngineOptions defaults() {
        return new EngineOptions(DEFAULT_MAX_BATCH_SIZE, true);
    }

    public EngineOptions withMaxBatchSize(int size) {
        return new EngineOptions(size, stopAtEos);
    }
}
