package io.flexstream.policy;

/**
 * The LP's variables for one (gbs, nb): nine placement shares as FRACTIONS in [0, 1] (the LP works in fractions; the
 * {@link Policy} the search returns holds percent) and the per-layer block times in SECONDS, which the epigraph
 * constraints push down onto the max of their overlapped terms.
 */
public enum LpVariable {
    /** Weights on device, host, disk. */
    WG, WC, WN,
    /** KV cache on device, host, disk. */
    CG, CC, CN,
    /** Activations (hidden states between layers) on device, host, disk. */
    HG, HC, HN,
    /** Prefill time of one layer for the whole block, seconds. */
    T_PRE,
    /** Decode time of one layer for one token of the whole block, seconds. */
    T_GEN;

    public static final int COUNT = values().length;

    public boolean isShare() {
        return ordinal() < T_PRE.ordinal();
    }

    /** The share by tensor class (0 weights, 1 cache, 2 activations) and tier (0 device, 1 host, 2 disk). */
    static LpVariable share(int tensorClass, int tier) {
        return values()[3 * tensorClass + tier];
    }

    /** Lower-case name as used in messages and pins: wg, wc, wn, ... */
    public String label() {
        return switch (this) {
            case T_PRE -> "Tpre";
            case T_GEN -> "Tgen";
            default -> name().toLowerCase(java.util.Locale.ROOT);
        };
    }
}
