package io.flexstream.policy;

import org.junit.jupiter.api.Test;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PolicyCacheTest {

    static final PolicySearch SEARCH = new PolicySearch(new CostModel(HardwareProfile.load("t4-flexgen"), CostModel.Mode.FLEXGEN));
    static final Workload OPT_13B = Workload.of(ModelShape.named("opt-13b"), 1, 1);

    @Test
    void oneSearchPerBucket() {
        PolicyCache cache = new PolicyCache(SEARCH, OPT_13B, Pins.NONE, 64, 16);
        Solution a = cache.policyFor(100, 20);
        Solution b = cache.policyFor(128, 32);          // same bucket: prompt <= 128, gen <= 32
        assertSame(a, b);
        assertEquals(1, cache.searches());
        // The bucket runs at its upper bounds.
        assertEquals(128, a.formulation().workload().promptLen());
        assertEquals(32, a.formulation().workload().genLen());
        assertEquals(new PolicyCache.Key(128, 32, 0), cache.key(65, 17, 0));

        Solution longer = cache.policyFor(129, 32);     // next prompt bucket
        assertEquals(192, longer.formulation().workload().promptLen());
        assertEquals(2, cache.searches());
        assertEquals(2, cache.size());
        assertSame(longer, cache.policyFor(150, 17));
        assertEquals(2, cache.searches());
    }

    @Test
    void partialBlocksAreCappedAndCachedPerSize() {
        PolicyCache cache = new PolicyCache(SEARCH, OPT_13B, Pins.NONE, 64, 16);
        int full = cache.policyFor(256, 32).policy().blockSize();
        Solution partial = cache.policyForPartialBlock(256, 32, 10);
        assertTrue(partial.policy().blockSize() <= 10, "block " + partial.policy().blockSize());
        assertTrue(full > 10);
        assertSame(partial, cache.policyForPartialBlock(200, 30, 10));
        assertEquals(2, cache.searches());
    }

    @Test
    void concurrentRequestsSearchOnce() throws Exception {
        PolicyCache cache = new PolicyCache(SEARCH, OPT_13B, Pins.NONE, 64, 16);
        try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
            Future<?>[] f = new Future<?>[8];
            for (int i = 0; i < f.length; i++) f[i] = pool.submit(() -> cache.policyFor(512, 32));
            for (Future<?> x : f) x.get();
        }
        assertEquals(1, cache.searches());
    }

    @Test
    void infeasibleBucketsAreCachedAndRethrown() {
        PolicyCache cache = new PolicyCache(SEARCH, OPT_13B, Pins.NONE.withShare(LpVariable.WG, 100).withShare(LpVariable.CG, 100), 64, 16);
        // A 2048-token bucket with the whole cache and all weights on a 15 GB GPU does not fit.
        InfeasiblePolicyException e = assertThrows(InfeasiblePolicyException.class, () -> cache.policyFor(2048, 512));
        assertTrue(e.getMessage().contains("GPU memory"), e.getMessage());
        assertThrows(InfeasiblePolicyException.class, () -> cache.policyFor(2000, 500));
        assertEquals(1, cache.searches());
        assertThrows(IllegalArgumentException.class, () -> cache.policyFor(0, 5));
    }
}
