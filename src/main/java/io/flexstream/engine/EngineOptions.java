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
 * @param fp16Weights    the offloading engine stores uncompressed weights as IEEE fp16 in its tiers and widens them to
 *                       fp32 as they load (half the bytes of fp32 on every transfer); tokens then equal those of the
 *                       fp32 model whose weights were rounded to fp16 first
 * @param weightCacheDir where a checkpoint's compressed weights are cached between starts; null for a
 *                       {@code .flexstream-cache} directory inside the checkpoint directory
 */
public record EngineOptions(int maxBatchSize, boolean stopAtEos, boolean compressWeight, boolean compressCache,
                            boolean fp16Weights, Path weightCacheDir) {

    public static final int DEFAULT_MAX_BATCH_SIZE = 64;

    public EngineOptions {
        if (maxBatchSize < 1) {
            throw new IllegalArgumentException("maxBatchSize must be at least 1, got " + maxBatchSize);
        }
        if (compressWeight && fp16Weights) {
            throw new IllegalArgumentException("fp16 weight storage and 4-bit weight compression exclude each other "
                    + "(compressed weights keep their 1-D tensors in fp32 and their matrices in 4 bits); pick one");
        }
    }

    public EngineOptions(int maxBatchSize, boolean stopAtEos, boolean compressWeight) {
        this(maxBatchSize, stopAtEos, compressWeight, false, false, null);
    }

    public EngineOptions(int maxBatchSize, boolean stopAtEos) {
        this(maxBatchSize, stopAtEos, false);
    }

    /** How the offloading engine stores weights. */
    public WeightFormat weightFormat() {
        return compressWeight ? WeightFormat.INT4 : fp16Weights ? WeightFormat.FP16 : WeightFormat.FP32;
    }

    public static EngineOptions defaults() {
        return new EngineOptions(DEFAULT_MAX_BATCH_SIZE, true, false);
    }

    public EngineOptions withMaxBatchSize(int size) {
        return new EngineOptions(size, stopAtEos, compressWeight, compressCache, fp16Weights, weightCacheDir);
    }

    public EngineOptions withCompressWeight(boolean compress) {
        return new EngineOptions(maxBatchSize, stopAtEos, compress, compressCache, fp16Weights, weightCacheDir);
    }

    public EngineOptions withCompressCache(boolean compress) {
        return new EngineOptions(maxBatchSize, stopAtEos, compressWeight, compress, fp16Weights, weightCacheDir);
    }

    public EngineOptions withFp16Weights(boolean fp16) {
        return new EngineOptions(maxBatchSize, stopAtEos, compressWeight, compressCache, fp16, weightCacheDir);
    }

    public EngineOptions withWeightCacheDir(Path dir) {
        return new EngineOptions(maxBatchSize, stopAtEos, compressWeight, compressCache, fp16Weights, dir);
    }
}
