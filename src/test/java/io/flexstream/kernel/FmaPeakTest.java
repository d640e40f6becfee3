package io.flexstream.kernel;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fma probe runs the micro-kernel for real (its sums are exact on all-ones operands) and reports a rate. */
class FmaPeakTest {

    @Test
    void everyCallAddsOneFullTileOfProducts() {
        // 6 x 16 elements, each gaining 256 products of 1 x 1 per call: exact in fp32 up to 2^24 per element
        float perCall = (float) (FmaPeak.flopsPerCall() / 2);
        assertEquals(1000 * perCall, FmaPeak.tile(1000));
    }

    @Test
    void rateIsPositiveAndFinite() {
        double rate = FmaPeak.gflops(2, 1_000, 3);
        assertTrue(rate > 0 && Double.isFinite(rate), "rate " + rate);
    }
}
