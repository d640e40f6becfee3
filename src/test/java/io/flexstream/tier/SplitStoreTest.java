package io.flexstream.tier;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Reading a range of items at once gives what reading them one by one gives, whichever tiers they live on. */
class SplitStoreTest {

    @Test
    void readItemsEqualsItemByItemReadsAcrossTheTiers(@TempDir Path dir) {
        long itemBytes = 3 * 4096 + 44;
        int items = 10;
        try (Tiers tiers = new Tiers(1 << 20, 1 << 20, dir, 1 << 20, true);
             SplitStore store = new SplitStore(tiers, items, itemBytes, new TierShares(0.3, 0.3), "test");
             Arena arena = Arena.ofShared()) {
            assertEquals(3, store.deviceItems());
            assertEquals(3, store.hostItems());
            assertEquals(4, store.diskItems());
            MemorySegment item = arena.allocate(itemBytes);
            for (int i = 0; i < items; i++) {
                for (long b = 0; b + 4 <= itemBytes; b += 4) {
                    item.set(ValueLayout.JAVA_INT_UNALIGNED, b, (int) (i * 1_000_003L + b));
                }
                store.write(i, 0, item, 0, itemBytes);
            }
            long offset = 100, length = 2 * 4096 + 7, stride = length + 13;
            for (int[] range : new int[][] {{1, 9}, {0, 10}, {6, 10}, {4, 5}, {2, 3}}) {
                int from = range[0], to = range[1];
                MemorySegment together = arena.allocate(stride * (to - from));
                MemorySegment oneByOne = arena.allocate(stride * (to - from));
                store.readItems(from, to, offset, together, stride, length);
                for (int i = from; i < to; i++) {
                    store.read(i, offset, oneByOne, (i - from) * stride, length);
                }
                assertEquals(-1, together.mismatch(oneByOne), "items [" + from + ", " + to + ")");
            }
        }
    }
}
