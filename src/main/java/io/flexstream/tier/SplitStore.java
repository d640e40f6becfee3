package io.flexstream.tier;

import java.lang.foreign.MemorySegment;

/**
 * A tensor made of equal items (sequences of a GPU batch) split over the tiers by whole items: the first items live
 * on the device, the next on the host, the rest on disk. This is how the KV cache and the activations of a batch
 * are placed: a sequence is never cut, so attention over it can run where it lives.
 */
public final class SplitStore implements AutoCloseable {

    private final long itemBytes;
    private final int[] counts;
    private final MemoryTier.Buffer device;
    private final MemoryTier.Buffer host;
    private final DiskTier.Region disk;
    private final TierParts parts;

    public SplitStore(Tiers tiers, int items, long itemBytes, TierShares shares, String what) {
        this.itemBytes = itemBytes;
        this.counts = shares.splitItems(items);
        this.parts = new TierParts(tiers, new long[] {counts[0] * itemBytes, counts[1] * itemBytes,
                counts[2] * itemBytes}, what);
        this.device = parts.device;
        this.host = parts.host;
        this.disk = parts.disk;
    }

    public int deviceItems() {
        return counts[0];
    }

    public int hostItems() {
        return counts[1];
    }

    public int diskItems() {
        return counts[2];
    }

    public long itemBytes() {
        return itemBytes;
    }

    public TierKind tierOf(int item) {
        return item < counts[0] ? TierKind.DEVICE : item < counts[0] + counts[1] ? TierKind.HOST : TierKind.DISK;
    }

    /** The device-resident items [0, deviceItems), or null. */
    public MemorySegment deviceView() {
        return device == null ? null : device.segment();
    }

    /** The host-resident items [deviceItems, deviceItems + hostItems), or null. */
    public MemorySegment hostView() {
        return host == null ? null : host.segment();
    }

    public long bytesOn(TierKind kind) {
        return counts[kind.ordinal()] * itemBytes;
    }

    /** Copies {@code length} bytes at {@code offset} of item {@code item} into {@code dst} at {@code dstOffset}. */
    public void read(int item, long offset, MemorySegment dst, long dstOffset, long length) {
        switch (tierOf(item)) {
            case DEVICE -> MemorySegment.copy(device.segment(), item * itemBytes + offset, dst, dstOffset, length);
            case HOST -> MemorySegment.copy(host.segment(), (item - counts[0]) * itemBytes + offset, dst, dstOffset,
                    length);
            case DISK -> disk.read((item - counts[0] - counts[1]) * itemBytes + offset, dst, dstOffset, length);
        }
    }

    /**
     * Copies {@code length} bytes at {@code offset} of each item in [from, to) into {@code dst}, item i at
     * {@code (i - from) * dstStride}. The disk-resident items are read all at once ({@link DiskTier.Region#readAll}),
     * not one request after another.
     */
    public void readItems(int from, int to, long offset, MemorySegment dst, long dstStride, long length) {
        int firstOnDisk = Math.max(from, counts[0] + counts[1]);
        for (int item = from; item < Math.min(to, firstOnDisk); item++) {
            read(item, offset, dst, (item - from) * dstStride, length);
        }
        int onDisk = to - firstOnDisk;
        if (onDisk <= 0) {
            return;
        }
        long[] offsets = new long[onDisk];
        long[] dstOffsets = new long[onDisk];
        long[] lengths = new long[onDisk];
        for (int i = 0; i < onDisk; i++) {
            int item = firstOnDisk + i;
            offsets[i] = (item - counts[0] - counts[1]) * itemBytes + offset;
            dstOffsets[i] = (item - from) * dstStride;
            lengths[i] = length;
        }
        disk.readAll(offsets, dst, dstOffsets, lengths);
    }

    /** Copies {@code length} bytes of {@code src} from {@code srcOffset} into item {@code item} at {@code offset}. */
    public void write(int item, long offset, MemorySegment src, long srcOffset, long length) {
        switch (tierOf(item)) {
            case DEVICE -> MemorySegment.copy(src, srcOffset, device.segment(), item * itemBytes + offset, length);
            case HOST -> MemorySegment.copy(src, srcOffset, host.segment(), (item - counts[0]) * itemBytes + offset,
                    length);
            case DISK -> disk.write((item - counts[0] - counts[1]) * itemBytes + offset, src, srcOffset, length);
        }
    }

    @Override
    public void close() {
        parts.close();
    }
}
