package io.flexstream.policy;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PolicyTest {

    @Test
    void percentRoundTripsInFlexGenOrder() {
        Policy p = Policy.of(48, 3, "20 80 0 100 0 100", true);
        assertArrayEquals(new double[] {20, 80, 0, 100, 0, 100}, p.percent());
        assertEquals("20 80 0 100 0 100", p.formatPercent());
        assertEquals(144, p.blockSize());
        assertEquals(0, p.weightDisk());
        Policy q = Policy.of(1, 432, "1.59,46.79,0,0,0,100", true);
        assertEquals(51.62, q.weightDisk(), 1e-9);
        assertEquals(100, q.cacheDisk());
        assertEquals("1.59 46.79 0 0 0 100", q.formatPercent());
        assertEquals("10.5 0 0 0 0 0", new Policy(1, 1, 10.5, 0, 0, 0, 0, 0, false, false, false).formatPercent());
    }

    @Test
    void invalidPoliciesAreRejectedWithTheReason() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Policy.of(0, 1, "100 0 100 0 100 0", false))
                .getMessage().contains("gpu batch size must be positive"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Policy.of(1, -2, "100 0 100 0 100 0", false))
                .getMessage().contains("number of gpu batches"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Policy.of(1, 1, "60 60 0 100 0 100", false))
                .getMessage().contains("weight gpu + cpu percent must be at most 100"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Policy.of(1, 1, "0 0 -5 100 0 100", false))
                .getMessage().contains("cache gpu percent must be in [0, 100]"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Policy.parsePercent("1 2 3"))
                .getMessage().contains("six numbers"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Policy.parsePercent("a 0 0 0 0 0"))
                .getMessage().contains("'a' is not a number"));
        assertThrows(IllegalArgumentException.class, () -> Policy.of(1, 1, "0 0 0 0 101 0", false));
    }
}
