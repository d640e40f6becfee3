package io.flexstream.policy;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused zig-zag decode of the CPU backend in the cost model: a block whose cache and activations sit wholly on
 * the device pays the layer's weight-streaming floor once per decode step, not once per GPU batch; the search and the
 * evaluation of hand-set policies use it exactly where the engine runs it.
 */
class CostModelFusedDecodeTest {

    private static final Workload W = Workload.of(ModelShape.named("opt-125m"), 32, 16);
    private static final HardwareProfile HW = HardwareProfile.load("cpu-2core-estimate");
    private static final CostModel CPU = new CostModel(HW, CostModel.Mode.FLEXSTREAM, CostModel.DEFAULT_ALPHA,
            CostModel.Calibration.FP32);
    private static final CostModel GPU = new CostModel(HW, CostModel.Mode.FLEXSTREAM, CostModel.DEFAULT_ALPHA,
            CostModel.Calibration.DEFAULT);

    @Test
    void onlyTheCpuCalibrationFusesAndOnlyForSeveralGpuBatches() {
        assertTrue(CPU.fusesDecode(4));
        assertFalse(CPU.fusesDecode(1));
        assertFalse(GPU.fusesDecode(4));
        assertFalse(new CostModel(HW, CostModel.Mode.FLEXGEN, CostModel.DEFAULT_ALPHA,
                CostModel.Calibration.FP32).fusesDecode(4));
        assertThrows(IllegalStateException.class, () -> GPU.formulateFused(W, 8, 4));
    }

    @Test
    void aFusedStepStreamsTheWeightsOncePerBlock() {
        int gbs = 2, nb = 8;   // small GPU batches: each one's products are bound by streaming the weights
        Policy allOnDevice = Policy.of(gbs, nb, "100 0 100 0 100 0", false);
        double general = CPU.formulate(W, gbs, nb).evaluate(allOnDevice).decodeSecondsPerLayer();
        double fused = CPU.formulateFused(W, gbs, nb).evaluate(allOnDevice).decodeSecondsPerLayer();
        double oneBatch = CPU.formulate(W, gbs, 1).evaluate(Policy.of(gbs, 1, "100 0 100 0 100 0", false))
                .decodeSecondsPerLayer();
        assertTrue(fused < general / 2, "fused " + fused + " s vs " + general + " s per step");
        // The general model charges nb GPU batches for what it charges one batch: the streaming floor nb times.
        assertEquals(nb * oneBatch, general, 1e-9 * general);
        // Prefill is run per GPU batch either way.
        assertEquals(CPU.formulate(W, gbs, nb).evaluate(allOnDevice).prefillSecondsPerLayer(),
                CPU.formulateFused(W, gbs, nb).evaluate(allOnDevice).prefillSecondsPerLayer(), 0);
    }

    @Test
    void theFusedLpPinsCacheAndActivationsToTheDevice() {
        Formulation fused = CPU.formulateFused(W, 8, 4);
        assertEquals(List.of("fused decode: cache on the device (cg = 1)"),
                placementRowsViolated(fused, Policy.of(8, 4, "100 0 0 100 100 0", false)));
        assertEquals(List.of("fused decode: activations on the device (hg = 1)"),
                placementRowsViolated(fused, Policy.of(8, 4, "100 0 100 0 0 100", false)));
        assertEquals(List.of(), placementRowsViolated(fused, Policy.of(8, 4, "100 0 100 0 100 0", false)));
        assertEquals(List.of(), placementRowsViolated(CPU.formulate(W, 8, 4),
                Policy.of(8, 4, "100 0 0 100 100 0", false)));
    }

    private static List<String> placementRowsViolated(Formulation f, Policy p) {
        return f.violated(Formulation.fractions(p), 1e-9).stream()
                .filter(r -> r.kind() == LpConstraint.Kind.PLACEMENT).map(LpConstraint::name).toList();
    }

    @Test
    void evaluationAndSearchUseTheFusedDecodeWhereTheEngineRunsIt() {
        PolicySearch search = new PolicySearch(CPU);
        Policy allOnDevice = Policy.of(2, 8, "100 0 100 0 100 0", false);
        assertEquals(CPU.formulateFused(W, 2, 8).evaluate(allOnDevice).throughput(),
                search.evaluate(W, allOnDevice).throughput(), 0);
        Policy cacheOnHost = Policy.of(2, 8, "100 0 0 100 100 0", false);
        assertEquals(CPU.formulate(W, 2, 8).evaluate(cacheOnHost).throughput(),
                search.evaluate(W, cacheOnHost).throughput(), 0);
        // Pinned to that block shape, the search finds the fused optimum (everything fits on the device here).
        Solution best = search.search(W, Pins.NONE.withGpuBatchSize(2).withNumGpuBatches(8)).best();
        assertEquals(search.evaluate(W, allOnDevice).throughput(), best.throughput(), 1e-6 * best.throughput());
        assertEquals(100, best.policy().cacheGpu(), 1e-6);
        assertEquals(100, best.policy().activationGpu(), 1e-6);
    }
}
