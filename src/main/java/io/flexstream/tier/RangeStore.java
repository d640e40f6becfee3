package io.flexstream.tier;

import java.lang.foreign.MemorySegment;

/**
 * A byte array split over the tiers by byte ranges: [0, d) on the device, [d, d + h) on the host, the rest on disk.
 * This is how one layer's weights are placed. FlexGen assigns whole tensors by the midpoint of their byte range, so
 * a 20/80 request can put only 8% of the bytes on the GPU; cutting at any 64-byte boundary of the layer's packed
 * tensors realises the requested shares to within 64 bytes.
 */
public final class RangeStore implements AutoCloseable {

    /** Cut points fall on multiples of this, so every piece stays aligned for vector loads. */
    public static final long UNIT = 64;

    private final long bytes;
    private final long[] split;
    private final MemoryTier.Buffer device;
    private final MemoryTier.Buffer host;
    private final DiskTier.Region disk;
    private final TierParts parts;

    public RangeStore(Tiers tiers, long bytes, TierShares shares, String what) {
        this.bytes = bytes;
        this.split = shares.splitBytes(bytes, UNIT);
        this.parts = new TierParts(tiers, split, what);
        this.device = parts.device;
        this.host = parts.host;
        this.disk = parts.disk;
    }

    public long bytes() {
        return bytes;
    }

    public long bytesOn(TierKind kind) {
        return split[kind.ordinal()];
    }

    /** Bytes of [from, to) that live on a tier. */
    public long bytesOn(TierKind kind, long from, long to) {
        long start = 0;
        for (int t = 0; t < kind.ordinal(); t++) {
            start += split[t];
        }
        long end = start + split[kind.ordinal()];
        return Math.max(0, Math.min(to, end) - Math.max(from, start));
    }

    /** The whole array when it lives entirely on the device (no working copy needed), else null. */
    public MemorySegment wholeOnDevice() {
        return split[0] == bytes ? device.segment() : null;
    }

    /** Writes {@code length} bytes of {@code src} at {@code offset}, wherever they live. */
    public void write(long offset, MemorySegment src, long srcOffset, long length) {
        transfer(offset, src, srcOffset, length, true);
    }

    /** Reads {@code length} bytes at {@code offset} into {@code dst}, wherever they live. */
    public void read(long offset, MemorySegment dst, long dstOffset, long length) {
        transfer(offset, dst, dstOffset, length, false);
    }

    /**
     * Reads {@code length} bytes at {@code offset} and hands them to {@code sink} piece by piece (a memory tier's
     * bytes in place, the disk's through staging, possibly from several reader threads at once), so that the caller
     * can convert them on the way. {@code at} counts from {@code offset}.
     */
    public void read(long offset, long length, DiskTier.ChunkSink sink) {
        walk(offset, length, (tier, local, at, n) -> {
            switch (tier) {
                case 0 -> sink.accept(device.segment(), local, at, n);
                case 1 -> sink.accept(host.segment(), local, at, n);
                default -> disk.read(local, n, (src, srcOffset, done, m) -> sink.accept(src, srcOffset, at + done, m));
            }
        });
    }

    private void transfer(long offset, MemorySegment other, long otherOffset, long length, boolean write) {
        walk(offset, length, (tier, local, at, n) -> {
            long o = otherOffset + at;
            switch (tier) {
                case 0 -> copy(device.segment(), local, other, o, n, write);
                case 1 -> copy(host.segment(), local, other, o, n, write);
                default -> {
                    if (write) {
                        disk.write(local, other, o, n);
                    } else {
                        disk.read(local, other, o, n);
                    }
                }
            }
        });
    }

    /** One tier's part of a range: tier 0 device, 1 host, 2 disk; {@code local} in the tier, {@code at} in range. */
    private interface Piece {
        void accept(int tier, long local, long at, long n);
    }

    /** Cuts [offset, offset + length) at the tier boundaries and hands each non-empty part on, in order. */
    private void walk(long offset, long length, Piece piece) {
        long end = offset + length;
        long tierStart = 0;
        for (int t = 0; t < 3 && offset < end; t++) {
            long tierEnd = tierStart + split[t];
            if (offset < tierEnd) {
                long n = Math.min(end, tierEnd) - offset;
                piece.accept(t, offset - tierStart, length - (end - offset), n);
                offset += n;
            }
            tierStart = tierEnd;
        }
    }

    private static void copy(MemorySegment home, long homeOffset, MemorySegment other, long otherOffset, long n,
                             boolean write) {
        if (write) {
            MemorySegment.copy(other, otherOffset, home, homeOffset, n);
        } else {
            MemorySegment.copy(home, homeOffset, other, otherOffset, n);
        }
    }

    @Override
    public void close() {
        parts.close();
    }
}
