package io.flexstream.policy;

import io.flexstream.tier.DiskTier;

/**
 * How many O_DIRECT requests the disk tier issues for ONE disk-resident sequence's KV cache in ONE layer, counted the
 * way the engine does its cache I/O, so that the cost model can charge each request's fixed latency. Decode moves a
 * few KiB per request, so there the latency, not the bandwidth, is most of the time.
 *
 * <p>The engine (BlockRun) reads a sequence's keys and its values (two calls) before each decode step and writes the
 * step's new key row and value row (two calls) after it; prefill writes the prompt's rows once. The disk tier
 * (DiskTier) works in {@link #BLOCK}-byte blocks:
 * <ul>
 *   <li>a read from a block-aligned offset fetches its whole blocks straight into place, one request per
 *   {@link #CHUNK}, and its partial last block through staging, one more. A sequence's cache starts at a block
 *   boundary in the file and in the working buffer when its bytes (capacity x row bytes) are a multiple of the block:
 *   always for fp32 rows of hidden >= 1024, for OPT-125M fp32 (3 KiB rows) when the capacity is a multiple of 4, as
 *   bench policy's 48. Otherwise the disk tier stages the whole read (one request) and this count is up to one
 *   request high per read;</li>
 *   <li>a write whose span begins or ends inside a block first reads that block (read-modify-write: one read request
 *   per such edge), then writes the block-rounded span, one request per {@link #STAGING} bytes.</li>
 * </ul>
 * The sizes are DiskTier's own constants, so the counts follow any change there.
 */
final class DiskCacheRequests {

    /** The disk tier's O_DIRECT block. */
    static final long BLOCK = DiskTier.BLOCK;
    /** Bytes per request of a read longer than this. */
    static final long CHUNK = DiskTier.CHUNK;
    /** Bytes per write request: the disk tier's staging buffer. */
    static final long STAGING = DiskTier.STAGING_BYTES;

    /** Read and write requests; fractional when averaged over decode steps. */
    record Counts(double reads, double writes) {
        Counts plus(Counts o) {
            return new Counts(reads + o.reads, writes + o.writes);
        }

        Counts times(double f) {
            return new Counts(reads * f, writes * f);
        }
    }

    private DiskCacheRequests() {
    }

    /** Requests of one read of {@code length} bytes from a block-aligned offset. */
    static Counts read(long length) {
        long whole = length / BLOCK * BLOCK;
        long wholeRequests = (whole + CHUNK - 1) / CHUNK;
        return new Counts(wholeRequests + (length % BLOCK != 0 ? 1 : 0), 0);
    }

    /** Requests of one write of {@code length} bytes at {@code offset}: edge-block reads and the span's writes. */
    static Counts write(long offset, long length) {
        if (length == 0) {
            return new Counts(0, 0);
        }
        long start = offset / BLOCK * BLOCK;
        long end = offset + length;
        long span = (end - start + BLOCK - 1) / BLOCK * BLOCK;
        int edges = (offset % BLOCK != 0 ? 1 : 0) + (end % BLOCK != 0 ? 1 : 0);
        return new Counts(edges, (span + STAGING - 1) / STAGING);
    }

    /**
     * Loading keys and values of one sequence in one layer before a decode step, averaged over the {@code genLen - 1}
     * decode steps: step t (1-based) reads the {@code promptLen + t - 1} rows cached so far.
     */
    static Counts decodeLoad(int promptLen, int genLen, long rowBytes) {
        Counts sum = new Counts(0, 0);
        for (int t = 1; t < genLen; t++) {
            sum = sum.plus(read((promptLen + t - 1L) * rowBytes));
        }
        return genLen <= 1 ? sum : sum.times(2.0 / (genLen - 1));
    }

    /**
     * Storing the new key and value row of one sequence in one layer after a decode step, averaged over the decode
     * steps: step t writes row {@code promptLen + t - 1}. Its reads are the read-modify-write of edge blocks.
     */
    static Counts decodeStore(int promptLen, int genLen, long rowBytes) {
        Counts sum = new Counts(0, 0);
        for (int t = 1; t < genLen; t++) {
            sum = sum.plus(write((promptLen + t - 1L) * rowBytes, rowBytes));
        }
        return genLen <= 1 ? sum : sum.times(2.0 / (genLen - 1));
    }

    /** Keys and values of one sequence in one layer written once in prefill: the prompt's rows from offset 0. */
    static Counts prefill(int promptLen, long rowBytes) {
        return write(0, promptLen * rowBytes).times(2);
    }
}
