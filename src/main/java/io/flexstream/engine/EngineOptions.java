package io.flexstream.engine;

import java.nio.file.Path;

/**
 * How the engine runs, independent of the model.
 *
 * @param maxBatchSize   sequences generated together at most; a larger call is split, prompts of similar length
 *                       together
 * @param stopAtEos      false only for benchmarks, which must generate exactly gen-len tokens per sequence whatever a
 *                       random model says (FlexGen's benchmark does the same)
 * @param compressWeight keep the decoder layers' matrices 4-bit group-wise compressed (FlexGen's --compress-weight):
 *                       about 0.14x the bytes of fp32 in every tier and on every transfer, dequantized inside the
 *                       matrix products
 * @param compressCache  keep the KV cache 4-bit group-wise compressed per token along the head dimension (FlexGen's
 *                       --compress-cache): 0.28x the bytes of fp16 with head_dim 64 or 128, stored and moved
 *                       compressed, read compressed by attention
 * @param weightCacheDir where a checkpoint's compressed weights are cached between starts; null for a
 *                       {@code .flexstream-cache} directory inside the checkpoint directory
 */
public record EngineOptions(int maxBatchSize, boolean stopAtEos, boolean compressWeight, boolean compressCache,
                            Path weightCacheDir) {

    public static final int DEFAULT_MAX_BATCH_SIZE = 64;

    public EngineOptions {
        if (maxBatchSize < 1) {
            throw new IllegalArgumentException("maxBatchSize must be at least 1, got " + maxBatchSize);
        }
    }

    public EngineOptions(int maxBatchSize, boolean stopAtEos) {
        this(maxBatchSize, stopAtEos, false);
    }

    public EngineOptions(int maxBatchSize, boolean stopAtEos, boolean compressWeight) {
        this(maxBatchSize, stopAtEos, compressWeight, false, null);
    }

    public static EngineOptions defaults() {
        return new EngineOptions(DEFAULT_MAX_BATCH_SIZE, true, false);
    }

    public EngineOptions withMaxBatchSize(int size) {
        return new EngineOptions(size, stopAtEos, compressWeight, compressCache, weightCacheDir);
    }

    public EngineOptions withCompressWeight(boolean compress) {
        return new EngineOptions(maxBatchSize, stopAtEos, compress, compressCache, weightCacheDir);
    }

    public EngineOptions withCompressCache(boolean compress) {
        return new EngineOptions(maxBatchSize, stopAtEos, compressWeight, compress, weightCacheDir);
    }

    public EngineOptions withWeightCacheDir(Path dir) {
        return new EngineOptions(maxBatchSize, stopAtEos, compressWeight, compressCache, dir);
    }
}
