package io.flexstream.policy;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Request counts of the disk tier's cache I/O, worked out by hand from its 4 KiB-block rules. */
class DiskCacheRequestsTest {

    private static final long ROW = 768 * 4;   // OPT-125M, fp32: 3 KiB per token row

    @Test
    void aReadIsItsWholeBlocksPlusAPartialTail() {
        assertEquals(1, DiskCacheRequests.read(3 * 4096).reads());          // whole blocks only
        assertEquals(1, DiskCacheRequests.read(ROW).reads());               // less than a block: the staged tail only
        assertEquals(2, DiskCacheRequests.read(41 * ROW).reads());          // 30.75 blocks: whole + tail
        assertEquals(1, DiskCacheRequests.read(40 * ROW).reads());          // 30 blocks exactly
        assertEquals(3, DiskCacheRequests.read((8L << 20) + 1).reads());    // two 4 MiB chunks + tail
        assertEquals(0, DiskCacheRequests.read(0).reads());
        assertEquals(0, DiskCacheRequests.read(ROW).writes());
    }

    @Test
    void aWriteReadsTheEdgeBlocksItCoversInPart() {
        assertEquals(new DiskCacheRequests.Counts(0, 1), DiskCacheRequests.write(0, 4096));
        assertEquals(new DiskCacheRequests.Counts(1, 1), DiskCacheRequests.write(0, ROW));          // tail edge
        assertEquals(new DiskCacheRequests.Counts(2, 1), DiskCacheRequests.write(ROW, ROW));        // 3072..6144
        assertEquals(new DiskCacheRequests.Counts(1, 1), DiskCacheRequests.write(1024, ROW));       // ends at 4096
        assertEquals(new DiskCacheRequests.Counts(0, 2), DiskCacheRequests.write(0, 16L << 20));    // two stagings
        assertEquals(new DiskCacheRequests.Counts(0, 0), DiskCacheRequests.write(ROW, 0));
    }

    @Test
    void decodeAveragesKeysAndValuesOverTheSteps() {
        // Prompt 32, 3 new tokens: steps 1 and 2 read 32 and 33 rows (24 blocks: 1 request; 24.75: 2) and write row
        // 32 (offset 98304, a block boundary: tail edge only) and row 33 (both edges). Keys and values: x2.
        DiskCacheRequests.Counts load = DiskCacheRequests.decodeLoad(32, 3, ROW);
        assertEquals(2 * (1 + 2) / 2.0, load.reads(), 1e-12);
        assertEquals(0, load.writes(), 1e-12);
        DiskCacheRequests.Counts store = DiskCacheRequests.decodeStore(32, 3, ROW);
        assertEquals(2 * (1 + 2) / 2.0, store.reads(), 1e-12);
        assertEquals(2 * (1 + 1) / 2.0, store.writes(), 1e-12);
        assertEquals(new DiskCacheRequests.Counts(0, 0), DiskCacheRequests.decodeLoad(32, 1, ROW));
    }

    @Test
    void prefillWritesThePromptOnce() {
        assertEquals(new DiskCacheRequests.Counts(0, 2), DiskCacheRequests.prefill(32, ROW));      // 24 whole blocks
        assertEquals(new DiskCacheRequests.Counts(2, 2), DiskCacheRequests.prefill(33, ROW));      // a partial tail
    }
}
