package io.flexstream.tier;

/**
 * One tensor's three homes: a device buffer, a host buffer and a disk region, each absent when its share is zero.
 * Allocates all three or none, and frees them together.
 */
final class TierParts implements AutoCloseable {

    final MemoryTier.Buffer device;
    final MemoryTier.Buffer host;
    final DiskTier.Region disk;

    /** @param bytes bytes on the device, the host and the disk */
    TierParts(Tiers tiers, long[] bytes, String what) {
        MemoryTier.Buffer d = null;
        MemoryTier.Buffer h = null;
        try {
            d = bytes[0] == 0 ? null : tiers.device().allocate(bytes[0], what);
            h = bytes[1] == 0 ? null : tiers.host().allocate(bytes[1], what);
            this.disk = bytes[2] == 0 ? null : tiers.disk().allocate(bytes[2], what);
        } catch (RuntimeException e) {
            if (d != null) {
                d.close();
            }
            if (h != null) {
                h.close();
            }
            throw e;
        }
        this.device = d;
        this.host = h;
    }

    @Override
    public void close() {
        if (device != null) {
            device.close();
        }
        if (host != null) {
            host.close();
        }
        if (disk != null) {
            disk.close();
        }
    }
}
