package io.flexstream.kernel;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fma probe computes what its scalar recurrence says, and reports a positive finite rate. */
class FmaPeakTest {

    @Test
    void chainsComputeTheScalarRecurrenceInEveryLane() {
        float c = 1f;
        for (int i = 0; i < 1000; i++) {
            c = Math.fma(c, 0.999999f, 1e-7f);
        }
        float expected = c * 12 * FmaPeak.lanes();
        assertEquals(expected, FmaPeak.chains(1000), Math.abs(expected) * 1e-5f);
    }

    @Test
    void rateIsPositiveAndFinite() {
        double rate = FmaPeak.gflops(2, 100_000, 3);
        assertTrue(rate > 0 && Double.isFinite(rate), "rate " + rate);
    }
}
