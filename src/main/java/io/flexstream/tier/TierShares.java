package io.flexstream.tier;

/**
 * How one tensor class spreads over the tiers: fractions in [0, 1] on the device and on the host; the disk takes
 * the rest.
 */
public record TierShares(double device, double host) {

    public TierShares {
        if (!(device >= 0 && device <= 1 && host >= 0 && host <= 1 && device + host <= 1 + 1e-9)) {
            throw new IllegalArgumentException("tier shares must be in [0, 1] and sum to at most 1: device "
                    + device + ", host " + host);
        }
    }

    public static final TierShares ALL_DEVICE = new TierShares(1, 0);

    public double disk() {
        return Math.max(0, 1 - device - host);
    }

    /**
     * Splits {@code count} whole items (sequences) into [device, host, disk] counts, rounding to the nearest item
     * and giving any remainder to the slowest tier the shares use.
     */
    public int[] splitItems(int count) {
        int onDevice = (int) Math.min(count, Math.round(device * count));
        int onHost = (int) Math.min(count - onDevice, Math.round(host * count));
        int onDisk = count - onDevice - onHost;
        if (onDisk > 0 && disk() == 0) { // rounding left items for a tier the shares do not use
            if (host > 0) {
                onHost += onDisk;
            } else {
                onDevice += onDisk;
            }
            onDisk = 0;
        }
        return new int[] {onDevice, onHost, onDisk};
    }

    /** Splits {@code bytes} into [device, host, disk] byte counts, each a multiple of {@code unit}. */
    public long[] splitBytes(long bytes, long unit) {
        long units = bytes / unit;
        long onDevice = Math.min(units, Math.round(device * units));
        long onHost = Math.min(units - onDevice, Math.round(host * units));
        long onDisk = units - onDevice - onHost;
        if (onDisk > 0 && disk() == 0) {
            if (host > 0) {
                onHost += onDisk;
            } else {
                onDevice += onDisk;
            }
            onDisk = 0;
        }
        long tail = bytes - units * unit; // a sub-unit tail stays with the last tier in use
        long[] split = {onDevice * unit, onHost * unit, onDisk * unit};
        int lastUsed = onDisk > 0 || disk() > 0 ? 2 : onHost > 0 || host > 0 ? 1 : 0;
        split[lastUsed] += tail;
        return split;
    }
}
