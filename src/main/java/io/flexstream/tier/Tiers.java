package io.flexstream.tier;

import java.nio.file.Path;

/** The device, host and disk tiers of one engine, with their budgets. */
public final class Tiers implements AutoCloseable {

    private final MemoryTier device;
    private final MemoryTier host;
    private final DiskTier disk;

    public Tiers(long deviceBytes, long hostBytes, Path offloadDir, long diskBytes, boolean directIo) {
        this.device = new MemoryTier(TierKind.DEVICE, deviceBytes, true);
        this.host = new MemoryTier(TierKind.HOST, hostBytes, true);
        this.disk = new DiskTier(offloadDir, diskBytes, directIo);
    }

    public MemoryTier device() {
        return device;
    }

    public MemoryTier host() {
        return host;
    }

    public DiskTier disk() {
        return disk;
    }

    public MemoryTier memory(TierKind kind) {
        return switch (kind) {
            case DEVICE -> device;
            case HOST -> host;
            case DISK -> throw new IllegalArgumentException("the disk is not a memory tier");
        };
    }

    /** Bytes allocated on a tier now (its allocator's accounting). */
    public long used(TierKind kind) {
        return kind == TierKind.DISK ? disk.used() : memory(kind).used();
    }

    /** Most bytes ever allocated at once on a tier. */
    public long peak(TierKind kind) {
        return kind == TierKind.DISK ? disk.peak() : memory(kind).peak();
    }

    /** A tier's hard limit, in bytes. */
    public long budget(TierKind kind) {
        return kind == TierKind.DISK ? disk.budget() : memory(kind).budget();
    }

    /** Peak bytes per tier, for reports: "device 1.2 GiB of 2.0 GiB, ...". */
    public String peakReport() {
        return String.format("device %s of %s, host %s of %s, disk %s of %s (O_DIRECT %s)",
                Sizes.format(device.peak()), Sizes.format(device.budget()), Sizes.format(host.peak()),
                Sizes.format(host.budget()), Sizes.format(disk.peak()), Sizes.format(disk.budget()),
                disk.direct() ? "on" : "off");
    }

    @Override
    public void close() {
        device.close();
        host.close();
        disk.close();
    }
}
