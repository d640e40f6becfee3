package io.flexstream.kernel.cuda;

/**
 * Whether the weight segments handed to the cuda backend may be rewritten in place while they are alive, which
 * decides how its device weight cache validates a hit ({@link WeightCache}).
 */
public enum WeightTrust {
    /** Weights are written once and then only read until freed: the in-memory engine. A hit is used as is. */
    STABLE,
    /**
     * Weight memory is reused for other weights (the offloading engine's working buffers): a hit counts only if a
     * hash of the host bytes matches the one taken at upload.
     */
    VERIFY
}
