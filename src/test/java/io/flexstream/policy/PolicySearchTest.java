package io.flexstream.policy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PolicySearchTest {

    static final HardwareProfile T4 = HardwareProfile.load("t4-flexgen");

    static PolicySearch search(CostModel.Mode mode) {
        return new PolicySearch(new CostModel(T4, mode));
    }

    static void assertSatisfiesEveryRow(Solution s, Pins pins) {
        List<LpConstraint> rows = new java.util.ArrayList<>(s.formulation().constraints());
        rows.addAll(PolicySearch.pinRows(pins));
        for (LpConstraint r : rows) {
            assertTrue(r.holds(s.values(), 1e-6), () -> "row '" + r.name() + "' violated by " + r.violation(s.values()));
        }
        for (LpVariable v : LpVariable.values()) {
            double x = s.values()[v.ordinal()];
            assertTrue(x >= -1e-9 && (!v.isShare() || x <= 1 + 1e-9), v.label() + " = " + x);
        }
        for (double pct : s.policy().percent()) assertTrue(pct >= 0 && pct <= 100, "percent " + pct);
        assertTrue(s.policy().weightGpu() + s.policy().weightCpu() <= 100 + 1e-9);
    }

    @ParameterizedTest
    @EnumSource(CostModel.Mode.class)
    void solutionsSatisfyEveryConstraintAndArePercent(CostModel.Mode mode) {
        PolicySearch ps = search(mode);
        for (String model : List.of("opt-1.3b", "opt-6.7b", "opt-30b", "opt-175b")) {
            for (boolean compress : new boolean[] {false, true}) {
                Workload w = Workload.of(ModelShape.named(model), 512, 32).withCompression(compress, compress);
                Solution s = ps.search(w, Pins.NONE).best();
                assertSatisfiesEveryRow(s, Pins.NONE);
                // Percent, not fractions: the shares of each class sum to 100.
                double[] x = s.values();
                assertEquals(100, 100 * (x[0] + x[1] + x[2]), 1e-6);
                assertEquals(100, s.policy().activationGpu() + s.policy().activationCpu(), 1e-6);
                assertTrue(s.prediction().throughput() > 0);
            }
        }
    }

    @Test
    void pinnedVariablesHold() {
        PolicySearch ps = search(CostModel.Mode.FLEXGEN);
        Workload w = Workload.of(ModelShape.named("opt-30b"), 512, 32);
        Pins pins = Pins.NONE.withGpuBatchSize(16).withShare(LpVariable.WG, 5).withShare(LpVariable.CN, 10);
        Solution s = ps.search(w, pins).best();
        assertEquals(16, s.policy().gpuBatchSize());
        assertEquals(5, s.policy().weightGpu(), 1e-6);
        assertEquals(10, s.policy().cacheDisk(), 1e-6);
        assertSatisfiesEveryRow(s, pins);

        // FlexGen's OPT-30B policy only fits with the relaxation it was evaluated with (alpha 1.2, 16 GB).
        HardwareProfile t4 = T4.withCapacities(16L << 30, T4.hostMemoryBytes(), T4.diskBytes());
        PolicySearch relaxed = new PolicySearch(new CostModel(t4, CostModel.Mode.FLEXGEN, 1.2, CostModel.Calibration.DEFAULT));
        Pins all = Pins.NONE.withGpuBatchSize(48).withNumGpuBatches(3).withPercent(Policy.parsePercent("20 80 0 100 0 100"));
        Solution fixed = relaxed.search(w, all).best();
        assertEquals(7.14, fixed.throughput(), 0.005);
        assertEquals("20 80 0 100 0 100", fixed.policy().formatPercent());
        assertEquals(48, fixed.policy().gpuBatchSize());
        assertEquals(3, fixed.policy().numGpuBatches());
        assertSatisfiesEveryRow(fixed, all);
    }

    @Test
    void pinnedBatchCountAndBlockCap() {
        PolicySearch ps = search(CostModel.Mode.FLEXGEN);
        Workload w = Workload.of(ModelShape.named("opt-30b"), 512, 32);
        Solution s = ps.search(w, Pins.NONE.withNumGpuBatches(2)).best();
        assertEquals(2, s.policy().numGpuBatches());
        Solution capped = ps.search(w, Pins.NONE.withMaxBlockSize(40)).best();
        assertTrue(capped.policy().blockSize() <= 40, "block " + capped.policy().blockSize());
        assertTrue(capped.throughput() < ps.search(w, Pins.NONE).best().throughput());
    }

    @Test
    void infeasibleInputNamesTheBindingConstraint() {
        PolicySearch ps = search(CostModel.Mode.FLEXGEN);
        // All of OPT-175B's weights (~324 GB) on a 15 GB GPU.
        Workload w = Workload.of(ModelShape.named("opt-175b"), 512, 32);
        InfeasiblePolicyException e = assertThrows(InfeasiblePolicyException.class,
                () -> ps.search(w, Pins.NONE.withShare(LpVariable.WG, 100)));
        assertTrue(e.binding().getFirst().startsWith("GPU memory in"), e.getMessage());
        assertTrue(e.getMessage().contains("capacity 15 GB x alpha 0.8"), e.getMessage());

        // Without pins: a host too small for OPT-30B's weights and no disk.
        HardwareProfile tiny = T4.withCapacities(15L << 30, 20L << 30, 0);
        PolicySearch small = new PolicySearch(new CostModel(tiny, CostModel.Mode.FLEXGEN));
        InfeasiblePolicyException e2 = assertThrows(InfeasiblePolicyException.class,
                () -> small.search(Workload.of(ModelShape.named("opt-30b"), 512, 32), Pins.NONE));
        assertTrue(e2.getMessage().contains("needs"), e2.getMessage());
        assertTrue(e2.binding().stream().anyMatch(b -> b.startsWith("CPU memory") || b.startsWith("GPU memory") || b.startsWith("disk")),
                e2.getMessage());

        // A pin that contradicts the runtime's rule "activations on device or host".
        InfeasiblePolicyException e3 = assertThrows(InfeasiblePolicyException.class,
                () -> ps.search(Workload.of(ModelShape.named("opt-1.3b"), 64, 8), Pins.NONE.withShare(LpVariable.HN, 50)));
        assertTrue(e3.getMessage().contains("pin hn = 50%"), e3.getMessage());
    }

    @Test
    void diagnoseReportsTheNeededBytes() {
        PolicySearch ps = search(CostModel.Mode.FLEXGEN);
        Workload w = Workload.of(ModelShape.named("opt-30b"), 512, 32);
        List<String> why = ps.diagnose(w, 1, 1, Pins.NONE.withShare(LpVariable.WG, 100));
        // 48 layers x 1.148 GiB = 55.1 GiB of weights alone.
        assertTrue(why.getFirst().matches("GPU memory in (prefill|decode): needs 5\\d\\.\\d GB, capacity 15 GB x alpha 0.8"), why.toString());
        assertTrue(ps.diagnose(w, 1, 1, Pins.NONE).isEmpty());
    }

    @Test
    void flexStreamModeOverlapsTheWeightUpload() {
        // Same constants, same placement: spreading the weight prefetch over the block can only make decode faster.
        Workload w = Workload.of(ModelShape.named("opt-30b"), 512, 32);
        Policy p = Policy.of(48, 3, "20 80 0 100 0 100", true);
        Prediction flexgen = search(CostModel.Mode.FLEXGEN).evaluate(w, p);
        Prediction ours = search(CostModel.Mode.FLEXSTREAM).evaluate(w, p);
        assertTrue(ours.decodeSecondsPerLayer() < flexgen.decodeSecondsPerLayer());
        // Compression moves fewer bytes: with the weights on disk (I/O-bound decode) it is faster by about the byte
        // ratio; where decode is compute-bound (the policy above) it only adds dequantization time.
        Policy onDisk = Policy.of(48, 3, "0 0 0 100 0 100", true);
        PolicySearch fs = search(CostModel.Mode.FLEXSTREAM);
        Prediction plain = fs.evaluate(w, onDisk);
        Prediction compressed = fs.evaluate(w.withCompression(true, false), onDisk.withCompression(true, false));
        // The layers shrink to 36/128; the LM head (vocab x hidden, counted with the layers) stays uncompressed.
        double layers = w.model().layers() * w.model().layerWeightBytes();
        double head = 2.0 * w.model().vocab() * w.model().hidden();
        double byteRatio = (layers * 36.0 / 128 + head) / (layers + head);
        assertEquals(byteRatio, compressed.decodeSecondsPerLayer() / plain.decodeSecondsPerLayer(), 0.01);
        Prediction dequantOnly = fs.evaluate(w.withCompression(true, false), p.withCompression(true, false));
        assertTrue(dequantOnly.decodeSecondsPerLayer() > ours.decodeSecondsPerLayer());
        // Compressed layers take 0.28x of the disk.
        assertEquals(byteRatio, compressed.diskBytes() / plain.diskBytes(), 1e-9);
    }

    @Test
    void inMemoryModelsAreMemoryBoundAtSmallDecodeBatches() {
        // Everything fits on the CPU backend's device tier: without a floor for reading the weights, every block
        // size would predict the same throughput. With it, larger GPU batches amortise the weight read until the
        // matrix products become compute bound, and the search picks a large batch rather than 1 x 1.
        HardwareProfile cpu = HardwareProfile.load("cpu-2core-estimate");
        PolicySearch fs = new PolicySearch(new CostModel(cpu, CostModel.Mode.FLEXSTREAM, 0.8,
                CostModel.Calibration.FP32));
        Workload w = Workload.of(ModelShape.named("opt-125m"), 64, 16);
        double one = fs.evaluate(w, Policy.of(1, 1, "100 0 100 0 100 0", false)).throughput();
        double eight = fs.evaluate(w, Policy.of(8, 1, "100 0 100 0 100 0", false)).throughput();
        double sixtyFour = fs.evaluate(w, Policy.of(64, 1, "100 0 100 0 100 0", false)).throughput();
        assertTrue(eight > 2 * one, one + " vs " + eight);
        assertTrue(sixtyFour < 8 * eight, "compute bound by then: " + eight + " vs " + sixtyFour);
        Solution best = fs.search(w, Pins.NONE.withMaxBlockSize(64)).best();
        assertTrue(best.policy().gpuBatchSize() >= 8, best.policy().toString());
        assertEquals(100, best.policy().percent()[0], 1e-6, "all weights on the device");
    }

    @Test
    void flexStreamTiesGoToTheLargerGpuBatch() {
        // Cache pinned to a disk this slow: the disk term binds and grows with the block's sequences, so every
        // (gbs, nb) of the largest block predicts the same tokens/s. The search must take the largest gbs of those.
        HardwareProfile cpu = HardwareProfile.load("cpu-2core-estimate");
        HardwareProfile slowDisk = new HardwareProfile("slow-disk", "", cpu.deviceMemoryBytes(), cpu.hostMemoryBytes(),
                cpu.diskBytes(), cpu.hostToDevice(), cpu.deviceToHostCache(), cpu.deviceToHostHidden(), 1e7,
                1e7, 1e7, 1e7, cpu.matmulFlopsPrefill(), cpu.matmulFlopsDecode(), cpu.attentionFlopsPrefill(),
                cpu.attentionFlopsDecode(), cpu.hostAttentionFlops(), 0, 0, 0, cpu.dequantizeElementsPerSecond(),
                cpu.weightStreamBytesPerSecond(), 40e-6, 40e-6, 40e-6);
        Workload w = Workload.of(ModelShape.named("opt-125m"), 32, 16);
        Pins pins = Pins.NONE.withMaxBlockSize(64).withShare(LpVariable.CG, 0).withShare(LpVariable.CC, 0);
        PolicySearch fs = new PolicySearch(new CostModel(slowDisk, CostModel.Mode.FLEXSTREAM, 0.8,
                CostModel.Calibration.FP32));
        Solution best = fs.search(w, pins).best();
        assertEquals(64, best.policy().blockSize(), best.policy().toString());
        double tied = fs.solve(w, 8, 8, pins).orElseThrow().throughput();
        assertEquals(best.throughput(), tied, 1e-9 * tied, "8x8 ties with the best: the case this is about");
        assertEquals(64, best.policy().gpuBatchSize(), best.policy().toString());
        // FlexGen mode keeps the first of equals (its published results depend on that).
        Solution flexgen = new PolicySearch(new CostModel(slowDisk, CostModel.Mode.FLEXGEN)).search(w, pins).best();
        assertTrue(flexgen.policy().gpuBatchSize() < 64, flexgen.policy().toString());
    }

    @Test
    void fp32CalibrationDoublesStoredBytes() {
        Workload w = Workload.of(ModelShape.named("opt-1.3b"), 128, 32);
        Policy onDisk = Policy.of(8, 2, "0 0 0 0 0 100", true);
        Prediction fp16 = new PolicySearch(new CostModel(T4, CostModel.Mode.FLEXSTREAM)).evaluate(w, onDisk);
        Prediction fp32 = new PolicySearch(new CostModel(T4, CostModel.Mode.FLEXSTREAM, 0.8, CostModel.Calibration.FP32))
                .evaluate(w, onDisk);
        assertEquals(2, fp32.diskBytes() / fp16.diskBytes(), 1e-9);
        // Compressed bytes do not depend on the uncompressed precision.
        Prediction q16 = new PolicySearch(new CostModel(T4, CostModel.Mode.FLEXSTREAM))
                .evaluate(w.withCompression(true, true), onDisk.withCompression(true, true));
        Prediction q32 = new PolicySearch(new CostModel(T4, CostModel.Mode.FLEXSTREAM, 0.8, CostModel.Calibration.FP32))
                .evaluate(w.withCompression(true, true), onDisk.withCompression(true, true));
        // Compressed layers do not depend on the uncompressed precision; only the (uncompressed) head doubles.
        double head16 = 2.0 * w.model().vocab() * w.model().hidden();
        assertEquals(head16, q32.diskBytes() - q16.diskBytes(), 1e-6 * q16.diskBytes());
        assertTrue(q16.diskBytes() < 0.4 * fp16.diskBytes(), "compressed layers and cache on disk");
    }

    @Test
    void fullSearchIsUnderASecond() {
        GlopSolver.ensureLoaded();
        PolicySearch ps = search(CostModel.Mode.FLEXGEN);
        Workload w = Workload.of(ModelShape.named("opt-175b"), 512, 32);
        ps.search(w, Pins.NONE);                                  // warm up the JIT
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 3; i++) best = Math.min(best, ps.search(w, Pins.NONE).nanos());
        System.out.printf("policy search OPT-175B (FlexGen mode): best of 3 %.1f ms, native load %.0f ms%n",
                best / 1e6, GlopSolver.ensureLoaded() / 1e6);
        assertTrue(best < 1_000_000_000L, "search took " + best / 1e6 + " ms");
    }

    @Test
    void randomPinsEitherHoldOrAreDiagnosed() {
        java.util.Random rnd = new java.util.Random(42);
        PolicySearch ps = search(CostModel.Mode.FLEXSTREAM);
        LpVariable[] shares = {LpVariable.WG, LpVariable.WC, LpVariable.WN, LpVariable.CG, LpVariable.CC, LpVariable.CN,
                LpVariable.HG, LpVariable.HC};
        String[] models = {"opt-1.3b", "opt-13b", "opt-66b"};
        int feasible = 0, infeasible = 0;
        for (int i = 0; i < 60; i++) {
            Workload w = new Workload(ModelShape.named(models[rnd.nextInt(3)]), 16 << rnd.nextInt(7), 1 << rnd.nextInt(8),
                    rnd.nextBoolean(), rnd.nextBoolean(), rnd.nextBoolean());
            int gbs = 1 << rnd.nextInt(8), nb = 1 + rnd.nextInt(16);
            Pins pins = Pins.NONE.withShare(shares[rnd.nextInt(shares.length)], 10 * rnd.nextInt(11));
            var s = ps.solve(w, gbs, nb, pins);
            if (s.isPresent()) {
                feasible++;
                assertSatisfiesEveryRow(s.get(), pins);
                pins.shares().forEach((v, pct) -> assertEquals(pct / 100, s.get().values()[v.ordinal()], 1e-7));
                assertTrue(ps.diagnose(w, gbs, nb, pins).isEmpty());
            } else {
                infeasible++;
                assertTrue(!ps.diagnose(w, gbs, nb, pins).isEmpty(), "an infeasible LP has a named reason");
            }
        }
        assertTrue(feasible > 5 && infeasible > 5, feasible + " feasible, " + infeasible + " infeasible");
    }
}
