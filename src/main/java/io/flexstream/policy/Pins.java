package io.flexstream.policy;

import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;

/**
 * Parts of the policy the user fixes: the batch sizes, any of the nine shares (PERCENT), and a cap on the block size
 * (a partial block of a micro-batcher has only so many sequences). Shares enter the LP as equality rows, so a pin that
 * cannot hold makes the LP infeasible and is named as such. Immutable; the {@code with...} methods return copies.
 *
 * @param gpuBatchSize  fixed gbs, or null
 * @param numGpuBatches fixed nb, or null
 * @param shares        fixed shares in percent by variable (only share variables)
 * @param maxBlockSize  largest gbs x nb the search may return, or null for no cap
 */
public record Pins(Integer gpuBatchSize, Integer numGpuBatches, Map<LpVariable, Double> shares, Integer maxBlockSize) {

    public static final Pins NONE = new Pins(null, null, Map.of(), null);

    public Pins {
        if (gpuBatchSize != null && gpuBatchSize <= 0) throw new IllegalArgumentException("pinned gpu batch size must be positive");
        if (numGpuBatches != null && numGpuBatches <= 0) throw new IllegalArgumentException("pinned number of gpu batches must be positive");
        if (maxBlockSize != null && maxBlockSize <= 0) throw new IllegalArgumentException("maximum block size must be positive");
        EnumMap<LpVariable, Double> copy = new EnumMap<>(LpVariable.class);
        shares.forEach((v, pct) -> {
            if (!v.isShare()) throw new IllegalArgumentException(v.label() + " is not a placement share");
            if (pct == null || !(pct >= 0 && pct <= 100)) {
                throw new IllegalArgumentException("pinned " + v.label() + " must be a percent in [0, 100], got " + pct);
            }
            copy.put(v, pct);
        });
        shares = Collections.unmodifiableMap(copy);
    }

    public Pins withGpuBatchSize(int gbs) {
        return new Pins(gbs, numGpuBatches, shares, maxBlockSize);
    }

    public Pins withNumGpuBatches(int nb) {
        return new Pins(gpuBatchSize, nb, shares, maxBlockSize);
    }

    public Pins withMaxBlockSize(int max) {
        return new Pins(gpuBatchSize, numGpuBatches, shares, max);
    }

    public Pins withShare(LpVariable v, double percent) {
        EnumMap<LpVariable, Double> m = new EnumMap<>(LpVariable.class);
        m.putAll(shares);
        m.put(v, percent);
        return new Pins(gpuBatchSize, numGpuBatches, m, maxBlockSize);
    }

    /** Pins the six {@code --percent} numbers WG WC CG CC HG HC (and so the disk shares too). */
    public Pins withPercent(double[] six) {
        if (six.length != 6) throw new IllegalArgumentException("--percent takes six numbers WG WC CG CC HG HC");
        LpVariable[] order = {LpVariable.WG, LpVariable.WC, LpVariable.CG, LpVariable.CC, LpVariable.HG, LpVariable.HC};
        Pins p = this;
        for (int i = 0; i < 6; i++) p = p.withShare(order[i], six[i]);
        return p;
    }
}
