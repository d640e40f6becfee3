package io.flexstream.engine;

import io.flexstream.engine.ScheduleTrace.Event;
import io.flexstream.engine.ScheduleTrace.Op;
import io.flexstream.kernel.CpuKernels;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.model.TinyModel;
import io.flexstream.model.tokenizer.Gpt2Tokenizer;
import io.flexstream.tier.TierBudgetExceededException;
import io.flexstream.tier.TierShares;
import io.flexstream.tier.Tiers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The offloading engine must produce exactly the tokens of the plain in-memory engine (fp32, same kernels) for every
 * placement, schedule and block shape, stay inside every tier's budget, and follow the schedule's invariants.
 */
class OffloadedGeneratorTest {

    private static final long MIB = 1L << 20;

    @TempDir
    static Path dir;
    static Path model;
    static OptWeights weights;
    static Gpt2Tokenizer tokenizer;
    static CpuKernels kernels;
    static Arena arena;
    static List<PreparedPrompt> prompts;
    static List<GenerationResult> expected;

    @BeforeAll
    static void setUp() throws Exception {
        model = dir.resolve("tiny");
        TinyModel.write(model, OptConfig.tiny(64, 3, 4, 50272), 3, io.flexstream.tensor.DType.F32);
        arena = Arena.ofShared();
        try (var ckpt = io.flexstream.model.Checkpoint.open(model)) {
            weights = OptWeights.load(ckpt, arena); // a copy: usable after the checkpoint closes
        }
        tokenizer = Gpt2Tokenizer.load(model);
        kernels = new CpuKernels();
        String[] texts = {"Hello", "Offloading moves tensors between tiers", "A", "Kafka streams prompts to",
                "The zig-zag schedule reuses weights across batches", "Seven", "Last one in a partial block"};
        prompts = new ArrayList<>();
        try (OptGenerator plain = new OptGenerator(weights, tokenizer, kernels, "tiny", EngineOptions.defaults())) {
            for (int i = 0; i < texts.length; i++) {
                SamplingParams sampling = i % 2 == 0 ? SamplingParams.greedy(4 + i)
                        : new SamplingParams(5 + i, 0.9f, 0.95f, 50, 100 + i, List.of());
                prompts.add(plain.prepare(GenerationRequest.text("p" + i, texts[i], sampling)));
            }
            expected = plain.generate(prompts);
        }
    }

    @AfterAll
    static void tearDown() {
        kernels.close();
        arena.close();
    }

    private static Tiers tiers(Path offload, long device, long host) {
        return new Tiers(device, host, offload, 4096 * MIB, true);
    }

    private static OffloadedGenerator engine(Placement placement, Tiers tiers, ScheduleTrace trace) {
        return new OffloadedGenerator(weights, tokenizer, kernels, placement, tiers, EngineOptions.defaults(),
                "tiny", trace, tiers);
    }

    private static void assertSameTokens(Placement placement, Path offload) {
        try (OffloadedGenerator engine = engine(placement, tiers(offload, 512 * MIB, 512 * MIB), null)) {
            List<GenerationResult> got = engine.generate(prompts);
            for (int i = 0; i < prompts.size(); i++) {
                assertEquals(expected.get(i).id(), got.get(i).id());
                assertArrayEquals(expected.get(i).tokenIds(), got.get(i).tokenIds(),
                        "prompt " + i + " under " + placement);
                assertEquals(expected.get(i).finishReason(), got.get(i).finishReason());
            }
        }
    }

    @Test
    void everyPlacementScheduleAndBlockShapeGivesThePlainEnginesTokens(@TempDir Path offload) {
        TierShares device = TierShares.ALL_DEVICE;
        TierShares host = new TierShares(0, 1);
        TierShares disk = new TierShares(0, 0);
        TierShares split = new TierShares(0.3, 0.4);
        Object[][] cases = {
                // weights, cache, activations, cpu attention
                {device, device, device, false},
                {split, device, device, false},
                {disk, device, device, false},
                {device, host, device, false},
                {device, disk, device, false},
                {device, device, host, false},
                {device, device, disk, false},
                {device, host, device, true},
                {split, split, split, true},
                {split, split, split, false},
                {disk, disk, disk, true},
        };
        int[][] shapes = {{1, 1}, {2, 2}, {3, 2}, {4, 1}, {2, 4}, {8, 1}};
        int shapeIndex = 0;
        for (Object[] c : cases) {
            for (ScheduleKind schedule : ScheduleKind.values()) {
                int[] shape = shapes[shapeIndex++ % shapes.length];
                assertSameTokens(new Placement(shape[0], shape[1], (TierShares) c[0], (TierShares) c[1],
                        (TierShares) c[2], (Boolean) c[3], schedule), offload);
            }
        }
    }

    /**
     * Block after block on one engine: the second and later blocks get the memory earlier blocks freed (MemoryTier
     * recycling), holding what those blocks left in it, in other shapes (a partial block, other prompt lengths).
     */
    @Test
    void blocksOnRecycledMemoryGiveTheSameTokens(@TempDir Path offload) {
        TierShares split = new TierShares(0.3, 0.4);
        for (Placement placement : List.of(
                new Placement(2, 2, TierShares.ALL_DEVICE, TierShares.ALL_DEVICE, TierShares.ALL_DEVICE, false,
                        ScheduleKind.ZIGZAG),
                new Placement(3, 1, split, split, split, true, ScheduleKind.ZIGZAG),
                new Placement(2, 1, split, new TierShares(0, 1), split, false, ScheduleKind.ROW))) {
            Tiers tiers = tiers(offload, 512 * MIB, 512 * MIB);
            try (OffloadedGenerator engine = engine(placement, tiers, null)) {
                for (int round = 0; round < 3; round++) {
                    // Each round in another order, so blocks meet memory another shape of block used last.
                    List<Integer> order = new ArrayList<>();
                    for (int i = 0; i < prompts.size(); i++) {
                        order.add((i * (round + 2)) % prompts.size());
                    }
                    List<PreparedPrompt> these = order.stream().distinct().map(prompts::get).toList();
                    List<GenerationResult> got = engine.generate(these);
                    for (int i = 0; i < these.size(); i++) {
                        int p = prompts.indexOf(these.get(i));
                        assertArrayEquals(expected.get(p).tokenIds(), got.get(i).tokenIds(),
                                "prompt " + p + ", round " + round + ", " + placement);
                    }
                    assertTrue(tiers.device().keptBytes() > 0, "the device tier kept the block's memory");
                }
            }
        }
    }

    @Test
    void tierBudgetsHoldAndAreEnforced(@TempDir Path offload) {
        Placement placement = new Placement(2, 2, new TierShares(0.5, 0.25), new TierShares(0.5, 0.5),
                new TierShares(0, 1), true, ScheduleKind.ZIGZAG);
        long device = 40 * MIB;
        long host = 40 * MIB;
        Tiers tiers = tiers(offload, device, host);
        try (OffloadedGenerator engine = engine(placement, tiers, null)) {
            engine.generate(prompts);
            assertTrue(tiers.device().peak() <= device && tiers.device().peak() > 0);
            assertTrue(tiers.host().peak() <= host && tiers.host().peak() > 0);
            assertTrue(tiers.disk().peak() > 0);
            assertTrue(engine.placementReport().contains("weights"));
        }
        Tiers tight = tiers(offload, 2 * MIB, host);
        var e = assertThrows(TierBudgetExceededException.class, () -> engine(placement, tight, null).generate(prompts));
        assertTrue(e.getMessage().contains("DEVICE tier budget exceeded"), e.getMessage());
        tight.close();
    }

    @Test
    void aModelLargerThanTheHostBudgetRunsWithWeightsOnDisk(@TempDir Path offload) {
        long modelBytes = 0;
        for (var layer : WeightStore.scheduleLayers(weights)) {
            for (var t : layer) {
                modelBytes += t == null ? 0 : t.byteSize();
            }
        }
        Placement placement = new Placement(4, 2, new TierShares(0, 0), TierShares.ALL_DEVICE,
                TierShares.ALL_DEVICE, false, ScheduleKind.ZIGZAG);
        Tiers tiers = tiers(offload, 256 * MIB, modelBytes / 4);
        try (OffloadedGenerator engine = engine(placement, tiers, null)) {
            List<GenerationResult> got = engine.generate(prompts);
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(expected.get(i).tokenIds(), got.get(i).tokenIds());
            }
            assertTrue(tiers.disk().bytesRead() >= modelBytes, "weights must be read from disk every token step");
        }
    }

    @Test
    void zigzagScheduleLoadsEachLayerOncePerTokenStepAndNeverReadsCacheBeforeItsStore(@TempDir Path offload) {
        int gbs = 2;
        int nb = 3;
        Placement placement = new Placement(gbs, nb, new TierShares(0, 1), new TierShares(0, 0.5),
                new TierShares(0, 1), false, ScheduleKind.ZIGZAG);
        ScheduleTrace trace = new ScheduleTrace();
        List<PreparedPrompt> block = prompts.subList(0, 6); // exactly one block: 2 x 3
        try (OffloadedGenerator engine = engine(placement, tiers(offload, 256 * MIB, 256 * MIB), trace)) {
            engine.generate(block);
        }
        List<Event> events = trace.events();
        int layers = 3 + 2;
        Map<String, Integer> weightLoads = new HashMap<>();
        int resident = 1; // the prologue's layer
        int maxResident = 1;
        Set<String> stored = new HashSet<>();
        int computes = 0;
        int tokens = 0;
        for (Event e : events) {
            switch (e.op()) {
                case LOAD_WEIGHT_START -> {
                    weightLoads.merge(e.token() + "/" + e.layer(), 1, Integer::sum);
                    if (!(e.token() == 0 && e.layer() == 0)) {
                        resident++;
                    }
                    maxResident = Math.max(maxResident, resident);
                }
                case RELEASE_WEIGHT -> resident--;
                case STORE_CACHE -> stored.add(e.layer() + "/" + e.batch());
                case LOAD_CACHE -> assertTrue(stored.contains(e.layer() + "/" + e.batch()),
                        "cache of layer " + e.layer() + " batch " + e.batch() + " loaded before any store");
                case COMPUTE -> {
                    computes++;
                    tokens = Math.max(tokens, e.token() + 1);
                }
                default -> { }
            }
        }
        assertTrue(maxResident <= 2, "at most two layers' weights may be resident, saw " + maxResident);
        weightLoads.forEach((key, n) -> assertEquals(1, n, "weights of token/layer " + key + " loaded " + n
                + " times"));
        for (int t = 0; t < tokens; t++) {
            for (int l = 0; l < layers; l++) {
                assertTrue(weightLoads.containsKey(t + "/" + l), "token " + t + " layer " + l + " never loaded");
            }
        }
        // Every batch computes every layer of every token step until the block finishes.
        assertEquals(0, computes % layers);
        assertFalse(events.stream().anyMatch(e -> e.op() == Op.LOAD_CACHE && e.token() == 0),
                "no cache exists to load during prefill");
    }

    @Test
    void theRowScheduleReloadsWeightsForEveryBatch(@TempDir Path offload) {
        Placement placement = new Placement(2, 3, new TierShares(0, 1), TierShares.ALL_DEVICE,
                TierShares.ALL_DEVICE, false, ScheduleKind.ROW);
        ScheduleTrace trace = new ScheduleTrace();
        try (OffloadedGenerator engine = engine(placement, tiers(offload, 256 * MIB, 256 * MIB), trace)) {
            engine.generate(prompts.subList(0, 6));
        }
        long loadsOfLayer1AtToken0 = trace.events().stream()
                .filter(e -> e.op() == Op.LOAD_WEIGHT_START && e.token() == 0 && e.layer() == 1).count();
        assertEquals(3, loadsOfLayer1AtToken0, "one load per GPU batch in the row schedule");
    }

    /**
     * With the cache and the activations on the device, decode steps compute the block's batches together (one pass
     * over each layer's weights): the tokens stay those of the plain engine, each layer is still loaded once per
     * token step, and decode moves no hidden states between batches and their homes.
     */
    @Test
    void decodeStepsComputeTheWholeBlockTogetherWhenCacheAndActivationsAreOnTheDevice(@TempDir Path offload) {
        Placement placement = new Placement(2, 3, new TierShares(0, 0), TierShares.ALL_DEVICE,
                TierShares.ALL_DEVICE, false, ScheduleKind.ZIGZAG);
        assertSameTokens(placement, offload);
        ScheduleTrace trace = new ScheduleTrace();
        try (OffloadedGenerator engine = engine(placement, tiers(offload, 256 * MIB, 256 * MIB), trace)) {
            engine.generate(prompts.subList(0, 6));
        }
        List<Event> events = trace.events();
        assertTrue(events.stream().anyMatch(e -> e.op() == Op.COMPUTE && e.token() > 0), "no decode step ran");
        assertFalse(events.stream().anyMatch(e -> (e.op() == Op.LOAD_HIDDEN || e.op() == Op.STORE_HIDDEN)
                && e.token() > 0), "a fused decode step keeps the block's hidden states in one buffer");
        Map<String, Integer> weightLoads = new HashMap<>();
        events.stream().filter(e -> e.op() == Op.LOAD_WEIGHT_START)
                .forEach(e -> weightLoads.merge(e.token() + "/" + e.layer(), 1, Integer::sum));
        weightLoads.forEach((key, n) -> assertEquals(1, n, "weights of token/layer " + key + " loaded " + n
                + " times"));
    }
}
