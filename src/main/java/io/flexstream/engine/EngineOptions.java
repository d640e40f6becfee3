package io.flexstream.engine;

/**
 * How the engine runs, independent of the model.
 *
 * @param maxBatchSize sequences generated together at most; a larger call is split, prompts of similar length
 *                     together
 * @param stopAtEos    false only for benchmarks, which must generate exactly gen-len tokens per sequence whatever a
 *                     random model says (FlexGen's benchmark does the same)
 * @param compressWeight keep the decoder layers' matrices 4-bit group-wise compressed (FlexGen's --compress-weight):
 *                     about 0.14x the bytes of fp32 in every tier and on every transfer, dequantized inside the
 *                     matrix products
 */
public record EngineOptions(int maxBatchSize, boolean stopAtEos, boolean compressWeight) {

    public static final int DEFAULT_MAX_BATCH_SIZE = 64;

    public EngineOptions {
        if (maxBatchSize < 1) {
            throw new IllegalArgumentException("maxBatchSize must be at least 1, got " + maxBatchSize);
        }
    }

    public EngineOptions(int maxBatchSize, boolean stopAtEos) {
        this(maxBatchSize, stopAtEos, false);
    }

    public static EngineOptions defaults() {
        return new EngineOptions(DEFAULT_MAX_BATCH_SIZE, true, false);
    }

    public EngineOptions withMaxBatchSize(int size) {
        return new EngineOptions(size, stopAtEos, compressWeight);
    }

    public EngineOptions withCompressWeight(boolean compress) {
        return new EngineOptions(maxBatchSize, stopAtEos, compress);
    }
}
