package io.flexstream.policy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * FLEXGEN.md section 8, tests 8, 9 and 10: the FlexGen-compatible cost mode with the T4 profile reproduces what
 * FlexGen's released LP returns (section 3.9), s = 512, n = 32, alpha 0.8, 15/200/1500 GB.
 */
class FlexGenReproductionTest {

    static final HardwareProfile T4 = HardwareProfile.load("t4-flexgen");
    static final PolicySearch SEARCH = new PolicySearch(new CostModel(T4, CostModel.Mode.FLEXGEN));

    static Workload workload(String model, boolean compressWeight) {
        return Workload.of(ModelShape.named(model), 512, 32).withCompression(compressWeight, false);
    }

    @ParameterizedTest(name = "{0} compress-w={1} -> {2}x{3}, {4} tok/s")
    @CsvSource({
            "opt-6.7b, false, 64, 9,   28.18",
            "opt-30b,  false, 32, 5,   7.08",
            "opt-175b, false, 1,  432, 0.17",
            "opt-30b,  true,  32, 7,   8.31",
            "opt-175b, true,  3,  13,  1.41",
    })
    void searchReproducesFlexGen(String model, boolean compressWeight, int gbs, int nb, double tokensPerSecond) {
        Solution best = SEARCH.search(workload(model, compressWeight), Pins.NONE).best();
        assertEquals(gbs, best.policy().gpuBatchSize(), "gbs");
        assertEquals(nb, best.policy().numGpuBatches(), "nb");
        // The published throughputs have 2-3 significant digits: compare within 1% (0.17 is itself rounded, so
        // the tolerance is the larger of 1% and half a unit of its last digit).
        double tolerance = Math.max(0.01 * tokensPerSecond, 0.005);
        assertEquals(tokensPerSecond, best.throughput(), tolerance, "throughput");
        assertEquals(best.throughput(), best.prediction().throughput(), 1e-6 * best.throughput(),
                "the LP's objective and the evaluated policy agree");
    }

    @Test
    void opt30bPlacementMatchesFlexGen() {
        double[] x = SEARCH.search(workload("opt-30b", false), Pins.NONE).best().values();
        assertEquals(0, x[LpVariable.CG.ordinal()], 1e-6);
        assertEquals(1, x[LpVariable.CC.ordinal()], 1e-6);
        assertEquals(1, x[LpVariable.HC.ordinal()], 1e-6);
        assertEquals(0.098, x[LpVariable.WN.ordinal()], 0.005);
        assertEquals(0.109, x[LpVariable.WG.ordinal()], 0.005);
    }

    @Test
    void fixedPaperPolicyOpt30b() {
        // 48 x 3, "20 80 0 100 0 100", evaluated as FlexGen's docstring suggests: alpha 1.2, a 16 GB GPU.
        HardwareProfile t4 = T4.withCapacities(16L << 30, T4.hostMemoryBytes(), T4.diskBytes());
        PolicySearch search = new PolicySearch(new CostModel(t4, CostModel.Mode.FLEXGEN, 1.2, CostModel.Calibration.DEFAULT));
        Prediction p = search.evaluate(workload("opt-30b", false), Policy.of(48, 3, "20 80 0 100 0 100", true));
        assertEquals(4.389, p.prefillSecondsPerLayer(), 0.0005);
        assertEquals(0.2924, p.decodeSecondsPerLayer(), 0.00005);
        assertEquals(7.14, p.throughput(), 0.005);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"opt-6.7b", "opt-30b", "opt-175b"})
    void nbUpperBoundIsTheFeasibilityBoundary(String model) {
        // Test 9: for each gbs of the enumeration, nb_ub is feasible and nb_ub + 1 is not; the enumeration ends at the
        // first gbs with nb_ub = 0.
        Workload w = workload(model, false);
        int checked = 0;
        for (int gbs = 1; ; gbs = gbs < 4 ? gbs + 1 : gbs * 2) {
            int ub = SEARCH.maxGpuBatches(w, gbs, Pins.NONE);
            if (ub == 0) {
                assertTrue(SEARCH.solve(w, gbs, 1, Pins.NONE).isEmpty());
                break;
            }
            assertTrue(SEARCH.solve(w, gbs, ub, Pins.NONE).isPresent(), gbs + "x" + ub + " feasible");
            assertTrue(SEARCH.solve(w, gbs, ub + 1, Pins.NONE).isEmpty(), gbs + "x" + (ub + 1) + " infeasible");
            checked++;
            assertTrue(gbs < PolicySearch.MAX_BLOCK, "enumeration must end");
        }
        assertTrue(checked >= 3, "several gbs values are feasible for " + model);
    }

    @Test
    void sizeAccounting() {
        // Test 10.
        double gib = HardwareProfile.GIB;
        ModelShape opt175 = ModelShape.named("opt-175b");
        ModelShape opt30 = ModelShape.named("opt-30b");
        assertEquals(325.2, opt175.modelBytes() / gib, 0.05);
        assertEquals(1224, opt175.cacheBytes(512, 544) / gib, 0.5);
        assertEquals(3.375, opt175.layerWeightBytes() / gib, 1e-9);
        assertEquals(1.1484, opt30.layerWeightBytes() / gib, 0.00005);
        assertEquals(2.0 * 144 * 544 * 48 * 7168 * 2, opt30.cacheBytes(144, 544), 1);
        assertTrue(opt30.cacheBytes(144, 544) / gib < 208 && opt30.cacheBytes(144, 544) / gib > 99);
        // The other published sizes (FLEXGEN.md 5.1). Ours also counts the position table (2050 x h), which FlexGen
        // leaves out: +0.03 GiB for OPT-30B.
        assertEquals(55.80, opt30.modelBytes() / gib, 0.05);
        assertEquals(12.39, ModelShape.named("opt-6.7b").modelBytes() / gib, 0.05);
        assertEquals(0.23, ModelShape.named("opt-125m").modelBytes() / gib, 0.01);
    }
}
