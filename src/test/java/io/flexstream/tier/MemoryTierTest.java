package io.flexstream.tier;

import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Budgets and the recycling of closed buffers' memory (what a block of the engine allocates again and again). */
class MemoryTierTest {

    private static final long MIB = 1 << 20;

    @Test
    void aRecyclingTierHandsTheSameMemoryOutAgainZeroed() {
        try (MemoryTier tier = new MemoryTier(TierKind.DEVICE, 64 * MIB, true)) {
            MemoryTier.Buffer first = tier.allocate(4 * MIB, "cache");
            long address = first.segment().address();
            first.segment().fill((byte) 7);
            first.close();
            assertEquals(0, tier.used());
            assertEquals(4 * MIB, tier.keptBytes());
            // A slightly smaller request of the next block takes the kept memory, zeroed, at its own size.
            MemoryTier.Buffer second = tier.allocate(3 * MIB, "cache");
            assertEquals(address, second.segment().address());
            assertEquals(3 * MIB, second.segment().byteSize());
            assertEquals(3 * MIB, tier.used());
            assertEquals(0, tier.keptBytes());
            for (long i = 0; i < second.bytes(); i += 4096) {
                assertEquals(0, second.segment().get(ValueLayout.JAVA_BYTE, i), "byte " + i);
            }
            second.close();
        }
    }

    @Test
    void memoryOverTwiceTheRequestIsNotHandedOut() {
        try (MemoryTier tier = new MemoryTier(TierKind.DEVICE, 64 * MIB, true)) {
            MemoryTier.Buffer x = tier.allocate(4 * MIB, "x");
            MemoryTier.Buffer y = tier.allocate(4 * MIB, "y");
            long yAddress = y.segment().address();
            x.close();
            y.close();
            assertEquals(8 * MIB, tier.keptBytes());
            // 1 MiB would waste three quarters of either kept buffer: fresh memory, and the oldest kept (x) is freed
            // so that in-use and kept bytes stay within the peak of 8 MiB; y's memory is still kept, untouched.
            MemoryTier.Buffer small = tier.allocate(MIB, "mask");
            assertEquals(4 * MIB, tier.keptBytes());
            assertNotEquals(yAddress, small.segment().address());
            small.close();
        }
    }

    @Test
    void keptAndUsedMemoryNeverExceedThePeakUse() {
        try (MemoryTier tier = new MemoryTier(TierKind.HOST, 64 * MIB, true)) {
            MemoryTier.Buffer a = tier.allocate(8 * MIB, "a");
            MemoryTier.Buffer b = tier.allocate(8 * MIB, "b");
            a.close();
            b.close();
            assertEquals(16 * MIB, tier.peak());
            assertEquals(16 * MIB, tier.keptBytes());
            // A request no kept buffer fits: the oldest kept memory is freed to stay within the peak.
            MemoryTier.Buffer big = tier.allocate(12 * MIB, "big");
            assertTrue(tier.keptBytes() + tier.used() <= tier.peak(), tier.keptBytes() + " kept");
            assertEquals(0, tier.keptBytes());
            big.close();
            assertTrue(tier.keptBytes() <= tier.peak());
        }
    }

    @Test
    void buffersUnderAPageAndPlainTiersAreFreedAtOnce() {
        try (MemoryTier plain = new MemoryTier(TierKind.HOST, 64 * MIB);
             MemoryTier recycling = new MemoryTier(TierKind.HOST, 64 * MIB, true)) {
            MemoryTier.Buffer a = plain.allocate(4 * MIB, "a");
            a.close();
            assertEquals(0, plain.keptBytes());
            assertThrows(IllegalStateException.class, () -> a.segment().get(ValueLayout.JAVA_BYTE, 0),
                    "a freed buffer is not readable");
            MemoryTier.Buffer tiny = recycling.allocate(MemoryTier.RECYCLE_MIN_BYTES - 1, "tiny");
            tiny.close();
            assertEquals(0, recycling.keptBytes());
        }
    }

    @Test
    void closingTheTierFreesWhatItKept() {
        MemoryTier tier = new MemoryTier(TierKind.DEVICE, 64 * MIB, true);
        MemoryTier.Buffer a = tier.allocate(4 * MIB, "a");
        var segment = a.segment();
        a.close();
        assertEquals(4 * MIB, tier.keptBytes());
        tier.close();
        assertEquals(0, tier.keptBytes());
        assertThrows(IllegalStateException.class, () -> segment.get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void theBudgetStillRefusesWhatDoesNotFit() {
        try (MemoryTier tier = new MemoryTier(TierKind.DEVICE, 4 * MIB, true)) {
            tier.allocate(4 * MIB, "cache").close();
            TierBudgetExceededException e = assertThrows(TierBudgetExceededException.class,
                    () -> tier.allocate(5 * MIB, "more cache"));
            assertTrue(e.getMessage().contains("more cache"), e.getMessage());
        }
    }
}
