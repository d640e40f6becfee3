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
 * @param fp16Weights  the offloading engine stores uncompressed weights as IEEE fp16 in its tiers and widens them to
 *                     fp32 as they load (half the bytes of fp32 on every transfer); tokens then equal those of the
 *                     fp32 model whose weights were rounded to fp16 first
 */
public record EngineOptions(int maxBatchSize, boolean stopAtEos, boolean compressWeight, boolean fp16Weights) {

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
        this(maxBatchSize, stopAtEos, compressWeight, false);
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
        return new EngineOptions(size, stopAtEos, compressWeight, fp16Weights);
    }

    public EngineOptions withCompressWeight(boolean compress) {
        return new EngineOptions(maxBatchSize, stopAtEos, compress, fp16Weights);
    }

    public EngineOptions withFp16Weights(boolean fp16) {
        return new EngineOptions(maxBatchSize, stopAtEos, compressWeight, fp16);
    }
}
