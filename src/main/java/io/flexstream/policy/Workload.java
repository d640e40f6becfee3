package io.flexstream.policy;

/**
 * What the block runs: a model, prompt and generation lengths (TOKENS; every sequence of the block is padded to
 * {@code promptLen} and generates {@code genLen} tokens), and the compression and attention-delegation choices.
 *
 * @param model           the model's shape
 * @param promptLen       prompt tokens s, positive
 * @param genLen          generated tokens n, positive
 * @param compressWeight  4-bit weights
 * @param compressCache   4-bit KV cache
 * @param cpuCacheCompute decode attention on the host for cache not on the device. FlexGen's cost model always
 *                        assumes it (so the FlexGen mode ignores this flag); the FlexStream mode honours it
 */
public record Workload(ModelShape model, int promptLen, int genLen,
                       boolean compressWeight, boolean compressCache, boolean cpuCacheCompute) {

    public Workload {
        if (model == null) throw new IllegalArgumentException("workload: model must be given");
        if (promptLen <= 0) throw new IllegalArgumentException("prompt length must be positive, got " + promptLen);
        if (genLen <= 0) throw new IllegalArgumentException("generation length must be positive, got " + genLen);
    }

    /** Uncompressed, with attention delegation: FlexGen's defaults for its cost model. */
    public static Workload of(ModelShape model, int promptLen, int genLen) {
        return new Workload(model, promptLen, genLen, false, false, true);
    }

    public Workload withCompression(boolean weight, boolean cache) {
        return new Workload(model, promptLen, genLen, weight, cache, cpuCacheCompute);
    }

    public Workload withLengths(int prompt, int gen) {
        return new Workload(model, prompt, gen, compressWeight, compressCache, cpuCacheCompute);
    }
}
