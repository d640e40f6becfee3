package io.flexstream.engine;

import io.flexstream.kernel.CpuKernels;
import io.flexstream.kernel.HalfFloats;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.tier.TierKind;
import io.flexstream.tier.TierShares;
import io.flexstream.tier.Tiers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * fp16 weight storage: the offloading engine with weights stored as halves in any tier gives exactly the tokens of
 * the in-memory fp32 engine run on the same weights rounded to fp16 first (widening is exact, so the only
 * difference from fp32 is the rounding of the weights), and moves half the bytes.
 */
class Fp16WeightsTest {

    private static final long MIB = 1L << 20;

    static Arena arena;
    static OptWeights weights;
    static OptWeights rounded;
    static CpuKernels kernels;

    @BeforeAll
    static void setUp() {
        arena = Arena.ofShared();
        OptConfig config = OptConfig.tiny(64, 3, 4, 50272);
        weights = OptWeights.random(config, 11, arena);
        rounded = OptWeights.random(config, 11, arena);
        roundInPlace(rounded);
        kernels = new CpuKernels();
    }

    /** Every weight tensor rounded to the nearest fp16 value, in place (the tied head once). */
    private static void roundInPlace(OptWeights w) {
        var seen = new HashSet<MemorySegment>();
        try (Arena scratch = Arena.ofConfined()) {
            for (List<MemorySegment> layer : WeightStore.scheduleLayers(w)) {
                for (MemorySegment t : layer) {
                    if (t != null && seen.add(t)) {
                        long n = t.byteSize() / Float.BYTES;
                        MemorySegment half = scratch.allocate(2 * n, 64);
                        HalfFloats.narrow(t, 0, half, 0, n);
                        HalfFloats.widen(half, 0, t, 0, n);
                    }
                }
            }
        }
    }

    @AfterAll
    static void tearDown() {
        kernels.close();
        arena.close();
    }

    private static List<PreparedPrompt> prompts(Generator engine) throws Exception {
        SplittableRandom random = new SplittableRandom(8);
        List<PreparedPrompt> out = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            int[] ids = new int[2 + random.nextInt(10)];
            for (int t = 0; t < ids.length; t++) {
                ids[t] = 4 + random.nextInt(50000);
            }
            // Greedy, and seeded sampling at a high temperature: over a flattened distribution the sampled token
            // moves with tiny changes of the logits, so fp16 rounding shows in the tokens (asserted below) and the
            // comparison really tests exactness.
            SamplingParams sampling = i % 2 == 0 ? SamplingParams.greedy(3 + i % 4)
                    : new SamplingParams(8 + i, 5.0f, 1.0f, 0, 40 + i, List.of());
            out.add(engine.prepare(GenerationRequest.tokens("h" + i, ids, sampling)));
        }
        return out;
    }

    @Test
    void fp16StorageGivesTheTokensOfTheFp16RoundedModelInEveryPlacement(@TempDir Path offload) throws Exception {
        EngineOptions plainOptions = EngineOptions.defaults();
        List<GenerationResult> expected;
        List<GenerationResult> unrounded;
        List<PreparedPrompt> prompts;
        try (OptGenerator plain = new OptGenerator(rounded, null, kernels, "tiny", plainOptions);
             OptGenerator fp32 = new OptGenerator(weights, null, kernels, "tiny", plainOptions)) {
            prompts = prompts(plain);
            expected = plain.generate(prompts);
            unrounded = fp32.generate(prompts);
        }
        // The rounding must matter on these prompts, or the test could not tell fp16 storage from fp32 storage.
        boolean differs = false;
        for (int i = 0; i < prompts.size(); i++) {
            differs |= !java.util.Arrays.equals(expected.get(i).tokenIds(), unrounded.get(i).tokenIds());
        }
        assertTrue(differs, "fp16 rounding changes no token here: the prompts cannot detect fp32 storage");
        EngineOptions options = plainOptions.withFp16Weights(true);
        TierShares[] weightShares = {TierShares.ALL_DEVICE, new TierShares(0.3, 0.4), new TierShares(0, 1),
                new TierShares(0, 0)};
        int shape = 0;
        for (TierShares w : weightShares) {
            for (ScheduleKind schedule : ScheduleKind.values()) {
                int gbs = 1 + shape % 3;
                Placement placement = new Placement(gbs, 1 + shape % 2, w, new TierShares(0.5, 0.5),
                        new TierShares(0, 1), shape % 2 == 1, schedule);
                shape++;
                Tiers tiers = new Tiers(256 * MIB, 256 * MIB, offload, 1024 * MIB, true);
                try (OffloadedGenerator engine = new OffloadedGenerator(weights, null, kernels, placement, tiers,
                        options, "tiny", null, tiers)) {
                    List<GenerationResult> got = engine.generate(prompts);
                    for (int i = 0; i < prompts.size(); i++) {
                        assertArrayEquals(expected.get(i).tokenIds(), got.get(i).tokenIds(),
                                "prompt " + i + " under " + placement);
                    }
                }
            }
        }
    }

    @Test
    void fp16StorageHoldsHalfTheBytesOfFp32(@TempDir Path offload) {
        Placement disk = new Placement(2, 2, new TierShares(0, 0), TierShares.ALL_DEVICE, TierShares.ALL_DEVICE,
                false, ScheduleKind.ZIGZAG);
        long fp32;
        long fp16;
        Tiers a = new Tiers(256 * MIB, 256 * MIB, offload, 1024 * MIB, true);
        try (OffloadedGenerator engine = new OffloadedGenerator(weights, null, kernels, disk, a,
                EngineOptions.defaults(), "tiny", null, a)) {
            fp32 = engine.weightBytesLoadedPerStep(TierKind.DISK);
        }
        Tiers b = new Tiers(256 * MIB, 256 * MIB, offload, 1024 * MIB, true);
        try (OffloadedGenerator engine = new OffloadedGenerator(weights, null, kernels, disk, b,
                EngineOptions.defaults().withFp16Weights(true), "tiny", null, b)) {
            fp16 = engine.weightBytesLoadedPerStep(TierKind.DISK);
        }
        assertEquals(fp32, 2 * fp16);
        assertFalse(fp16 == 0);
    }

    @Test
    void fp16AndFourBitWeightsExcludeEachOtherWithAClearError() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> EngineOptions.defaults().withCompressWeight(true).withFp16Weights(true));
        assertFalse(e.getMessage().isEmpty());
    }
}
