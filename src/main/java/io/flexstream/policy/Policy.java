package io.flexstream.policy;

import java.util.Locale;

/**
 * How a block of sequences runs: its batch sizes and where weights, KV cache and activations live.
 *
 * <p>Shares are PERCENT of bytes, 0..100 (never fractions: FlexGen's search wrote fractions into these fields). The disk
 * share of each tensor class is what is left: {@code 100 - gpu - cpu}. "gpu" is the compute device tier, "cpu" the host
 * tier. The engine realises a share at its own granularity (whole tensors for weights, whole sequences for the cache), so
 * the bytes actually placed may differ from the request.
 *
 * @param gpuBatchSize    sequences per compute call (gbs), positive
 * @param numGpuBatches   GPU batches per block (nb), positive; one weight load serves all of them
 * @param weightGpu       WG, percent of weight bytes on the device
 * @param weightCpu       WC, percent of weight bytes on the host
 * @param cacheGpu        CG, percent of KV-cache bytes on the device
 * @param cacheCpu        CC, percent of KV-cache bytes on the host
 * @param activationGpu   HG, percent of activation bytes on the device
 * @param activationCpu   HC, percent of activation bytes on the host
 * @param cpuCacheCompute decode attention runs on the host for cache not on the device (moves q, not the cache)
 * @param compressWeight  weights stored and moved as 4-bit groups
 * @param compressCache   KV cache stored and moved as 4-bit groups
 */
public record Policy(int gpuBatchSize, int numGpuBatches,
                     double weightGpu, double weightCpu,
                     double cacheGpu, double cacheCpu,
                     double activationGpu, double activationCpu,
                     boolean cpuCacheCompute, boolean compressWeight, boolean compressCache) {

    /** Slack for shares that come out of an LP in floating point (percent units). */
    static final double SHARE_TOLERANCE = 1e-6;

    public Policy {
        if (gpuBatchSize <= 0) throw new IllegalArgumentException("gpu batch size must be positive, got " + gpuBatchSize);
        if (numGpuBatches <= 0) {
            throw new IllegalArgumentException("number of gpu batches must be positive, got " + numGpuBatches);
        }
        checkPair("weight", weightGpu, weightCpu);
        checkPair("cache", cacheGpu, cacheCpu);
        checkPair("activation", activationGpu, activationCpu);
    }

    private static void checkPair(String what, double gpu, double cpu) {
        checkShare(what + " gpu percent", gpu);
        checkShare(what + " cpu percent", cpu);
        if (gpu + cpu > 100 + SHARE_TOLERANCE) {
            throw new IllegalArgumentException(what + " gpu + cpu percent must be at most 100 (the rest goes to disk), got "
                    + fmt(gpu) + " + " + fmt(cpu) + " = " + fmt(gpu + cpu));
        }
    }

    private static void checkShare(String what, double v) {
        if (!(v >= -SHARE_TOLERANCE && v <= 100 + SHARE_TOLERANCE)) {
            throw new IllegalArgumentException(what + " must be in [0, 100], got " + v);
        }
    }

    /** A policy with FlexGen's {@code --percent} six numbers (WG WC CG CC HG HC) and no compression. */
    public static Policy of(int gpuBatchSize, int numGpuBatches, String percent, boolean cpuCacheCompute) {
        double[] p = parsePercent(percent);
        return new Policy(gpuBatchSize, numGpuBatches, p[0], p[1], p[2], p[3], p[4], p[5], cpuCacheCompute, false, false);
    }

    /** Sequences per block: gbs x nb, the number of prompts one pass of the schedule takes. */
    public int blockSize() {
        return Math.multiplyExact(gpuBatchSize, numGpuBatches);
    }

    public double weightDisk() {
        return Math.max(0, 100 - weightGpu - weightCpu);
    }

    public double cacheDisk() {
        return Math.max(0, 100 - cacheGpu - cacheCpu);
    }

    public double activationDisk() {
        return Math.max(0, 100 - activationGpu - activationCpu);
    }

    /** The six shares in FlexGen's {@code --percent} order: WG WC CG CC HG HC. */
    public double[] percent() {
        return new double[] {weightGpu, weightCpu, cacheGpu, cacheCpu, activationGpu, activationCpu};
    }

    public Policy withCompression(boolean weight, boolean cache) {
        return new Policy(gpuBatchSize, numGpuBatches, weightGpu, weightCpu, cacheGpu, cacheCpu, activationGpu,
                activationCpu, cpuCacheCompute, weight, cache);
    }

    /**
     * Parses six numbers WG WC CG CC HG HC separated by spaces or commas, e.g. {@code "20 80 0 100 0 100"}; each in
     * [0, 100], pairs summing to at most 100.
     */
    public static double[] parsePercent(String text) {
        String[] parts = text.trim().split("[\\s,]+");
        if (parts.length != 6) {
            throw new IllegalArgumentException("--percent takes six numbers WG WC CG CC HG HC, got " + parts.length + ": '" + text + "'");
        }
        double[] p = new double[6];
        for (int i = 0; i < 6; i++) {
            try {
                p[i] = Double.parseDouble(parts[i]);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--percent: '" + parts[i] + "' is not a number", e);
            }
        }
        String[] names = {"weight", "cache", "activation"};
        for (int i = 0; i < 3; i++) checkPair(names[i], p[2 * i], p[2 * i + 1]);
        return p;
    }

    /** The shares as FlexGen's {@code --percent} argument, e.g. {@code "20 80 0 100 0 100"} (up to 2 decimals). */
    public String formatPercent() {
        StringBuilder b = new StringBuilder();
        for (double v : percent()) {
            if (!b.isEmpty()) b.append(' ');
            b.append(fmt(v));
        }
        return b.toString();
    }

    static String fmt(double v) {
        double r = Math.round(v * 100) / 100.0;
        if (r == Math.rint(r)) return Long.toString((long) r);
        return String.format(Locale.ROOT, "%.2f", r).replaceFirst("0$", "");
    }
}
