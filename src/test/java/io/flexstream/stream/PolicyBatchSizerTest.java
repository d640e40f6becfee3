package io.flexstream.stream;

import io.flexstream.policy.CostModel;
import io.flexstream.policy.HardwareProfile;
import io.flexstream.policy.ModelShape;
import io.flexstream.policy.Pins;
import io.flexstream.policy.PolicyCache;
import io.flexstream.policy.PolicySearch;
import io.flexstream.policy.Workload;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The consumer's LP batch sizer: FlexGen's published OPT-6.7B optimum as the target, re-solved for partial blocks. */
class PolicyBatchSizerTest {

    private static PolicyCache cache() {
        CostModel cost = new CostModel(HardwareProfile.load("t4-flexgen"), CostModel.Mode.FLEXGEN);
        Workload template = new Workload(ModelShape.named("opt-6.7b"), 1, 32, false, false, false);
        return new PolicyCache(new PolicySearch(cost), template, Pins.NONE, 64, 16);
    }

    @Test
    void targetIsTheSearchedBlockCappedByTheBuffer() {
        PolicyCache cache = cache();
        assertEquals(64 * 9, new PolicyBatchSizer(cache, 32, 10_000).targetSize(512));
        assertEquals(100, new PolicyBatchSizer(cache, 32, 100).targetSize(512));
        PolicyBatchSizer sizer = new PolicyBatchSizer(cache, 32, 10_000);
        assertTrue(sizer.describe(512, 576).startsWith("lp gbs=64 nb=9"), sizer.describe(512, 576));
        int searches = cache.searches();
        sizer.targetSize(500); // the same bucket (prompts up to 512 tokens): no new search
        assertEquals(searches, cache.searches());
    }

    @Test
    void aPartialBlockIsReSolvedForItsSize() {
        PolicyBatchSizer sizer = new PolicyBatchSizer(cache(), 32, 10_000);
        String partial = sizer.describe(512, 10);
        assertTrue(partial.endsWith("(partial block)"), partial);
        int gbs = Integer.parseInt(partial.replaceAll(".*gbs=(\\d+).*", "$1"));
        int nb = Integer.parseInt(partial.replaceAll(".*nb=(\\d+).*", "$1"));
        assertTrue(gbs * nb <= 10, partial);
    }
}
