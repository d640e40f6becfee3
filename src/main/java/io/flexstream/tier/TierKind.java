package io.flexstream.tier;

/** The three places FlexGen spreads tensors over, fastest first. */
public enum TierKind {
    /** The compute backend's own memory (GPU memory; on the CPU backend a separately budgeted arena). */
    DEVICE,
    /** Off-heap host memory. */
    HOST,
    /** Files in a spill directory, read and written with O_DIRECT where the file system allows it. */
    DISK
}
