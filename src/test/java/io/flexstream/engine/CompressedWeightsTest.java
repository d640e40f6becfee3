package io.flexstream.engine;

import io.flexstream.kernel.CpuKernels;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptLayerWeights;
import io.flexstream.model.OptWeights;
import io.flexstream.quant.QuantizedLinear;
import io.flexstream.quant.QuantizedMatrix;
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
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 4-bit weights in the engine: every placement and schedule of the offloading engine gives the tokens of the
 * in-memory engine with the same compressed weights; the compressed matrices take at most 0.29x the bytes of fp16;
 * and the next-token distributions stay close to the fp32 model's.
 */
class CompressedWeightsTest {

    private static final long MIB = 1L << 20;

    static Arena arena;
    static OptWeights weights;
    static CpuKernels kernels;

    @BeforeAll
    static void setUp() {
        arena = Arena.ofShared();
        weights = OptWeights.random(OptConfig.tiny(128, 3, 4, 50272), 21, arena);
        kernels = new CpuKernels();
    }

    @AfterAll
    static void tearDown() {
        kernels.close();
        arena.close();
    }

    private static List<PreparedPrompt> prompts(Generator engine) throws Exception {
        SplittableRandom random = new SplittableRandom(4);
        List<PreparedPrompt> out = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            int[] ids = new int[3 + random.nextInt(12)];
            for (int t = 0; t < ids.length; t++) {
                ids[t] = 4 + random.nextInt(50000);
            }
            out.add(engine.prepare(GenerationRequest.tokens("c" + i, ids, SamplingParams.greedy(4 + i % 3))));
        }
        return out;
    }

    @Test
    void everyPlacementOfCompressedWeightsGivesTheInMemoryCompressedTokens(@TempDir Path offload) throws Exception {
        EngineOptions options = EngineOptions.defaults().withCompressWeight(true);
        List<GenerationResult> expected;
        List<PreparedPrompt> prompts;
        try (OptGenerator plain = new OptGenerator(weights, null, kernels, "tiny", options)) {
            prompts = prompts(plain);
            expected = plain.generate(prompts);
        }
        TierShares[] weightShares = {TierShares.ALL_DEVICE, new TierShares(0.2, 0.5), new TierShares(0, 0)};
        int shape = 0;
        for (TierShares w : weightShares) {
            for (ScheduleKind schedule : ScheduleKind.values()) {
                int gbs = 1 + shape % 3;
                Placement placement = new Placement(gbs, 2, w, new TierShares(0.5, 0.5), new TierShares(0, 1),
                        shape % 2 == 0, schedule);
                shape++;
                Tiers tiers = new Tiers(256 * MIB, 256 * MIB, offload, 1024 * MIB, true);
                try (OffloadedGenerator engine = new OffloadedGenerator(weights, null, kernels, placement, tiers,
                        options, "tiny", null, tiers)) {
                    List<GenerationResult> got = engine.generate(prompts);
                    for (int i = 0; i < prompts.size(); i++) {
                        assertArrayEquals(expected.get(i).tokenIds(), got.get(i).tokenIds(), placement.toString());
                    }
                }
            }
        }
    }

    @Test
    void compressedMatricesTakeAtMostAFifthOfFp16Bytes() {
        OptConfig c = weights.config();
        long compressed = 0;
        long fp16 = 0;
        try (Arena staging = Arena.ofConfined()) {
            for (OptLayerWeights l : weights.layers()) {
                DecoderWeights q = DecoderWeights.quantize(l, c.hiddenSize(), c.ffnDim(), staging);
                for (LinearWeight w : List.of(q.q(), q.k(), q.v(), q.out(), q.fc1(), q.fc2())) {
                    QuantizedMatrix m = ((LinearWeight.Quantized) w).weight();
                    compressed += m.bytes();
                    fp16 += m.fp16Bytes();
                }
            }
            // The tied token table / output head, compressed too under --compress-weight.
            QuantizedMatrix table = ((LinearWeight.Quantized) DecoderWeights.quantizeMatrix(weights.embedTokens(),
                    c.vocabSize(), c.wordEmbedProjDim(), staging)).weight();
            compressed += table.bytes();
            fp16 += table.fp16Bytes();
        }
        double ratio = compressed / (double) fp16;
        System.out.printf("compressed matrices (decoder and token table): %d bytes vs %d fp16 bytes = %.3fx%n", compressed, fp16, ratio);
        assertTrue(ratio <= 0.29, "ratio " + ratio);
    }

    /**
     * Teacher-forced over a fixed random token stream, the 4-bit model's next-token distributions against the fp32
     * model's: mean KL(fp32 || 4-bit) and top-1 agreement over 300 positions.
     */
    @Test
    void nextTokenDistributionsStayCloseToFp32() {
        OptConfig c = weights.config();
        int positions = 300;
        int[] stream = new SplittableRandom(9).ints(positions + 1, 4, 50000).toArray();
        try (Arena work = Arena.ofShared(); QuantizedLinear quantized = new QuantizedLinear(2)) {
            List<DecoderWeights> dense = weights.layers().stream().map(DecoderWeights::dense).toList();
            List<DecoderWeights> compressed = weights.layers().stream()
                    .map(l -> DecoderWeights.quantize(l, c.hiddenSize(), c.ffnDim(), work)).toList();
            LinearWeight table = DecoderWeights.quantizeMatrix(weights.embedTokens(), c.vocabSize(),
                    c.wordEmbedProjDim(), work);
            float[][] p = teacherForced(dense, new LinearWeight.Dense(weights.embedTokens()), null, stream, positions,
                    work);
            float[][] q = teacherForced(compressed, table, quantized, stream, positions, work);
            double kl = 0;
            int agree = 0;
            for (int t = 0; t < positions; t++) {
                kl += Distributions.kl(p[t], q[t]);
                agree += Sampler.argmax(p[t]) == Sampler.argmax(q[t]) ? 1 : 0;
            }
            kl /= positions;
            double top1 = agree / (double) positions;
            System.out.printf("4-bit vs fp32 over %d positions: mean KL %.4f nats, top-1 agreement %.1f%%%n",
                    positions, kl, 100 * top1);
            // Measured on this seeded model with the decoder matrices and the tied token table / head in 4 bits: KL
            // 0.283 nats, top-1 71.0% (0.194 and 75.7% with the table in fp32; stated in the README). Random weights with
            // 1/sqrt(fan_in) scales and peaked logits are harsher than trained checkpoints, where FlexGen reports
            // no accuracy loss; the bounds catch a broken kernel or layout (KL of several nats, ~0% agreement).
            assertTrue(kl < 0.3, "mean KL " + kl);
            assertTrue(top1 >= 0.65, "top-1 agreement " + top1);
        }
    }

    /** Logits at each position; {@code table} is the tied token table and head (fp32 or 4-bit). */
    private static float[][] teacherForced(List<DecoderWeights> layers, LinearWeight table, QuantizedLinear quantized,
                                           int[] stream, int positions, Arena work) {
        OptConfig c = weights.config();
        OptForward forward = new OptForward(c, kernels, quantized, null, work, 1, 1);
        KvCache cache = new KvCache(work, c.numLayers(), 1, positions + 1, KvCache.rowBytes(c, null));
        MemorySegment x = work.allocate((long) c.hiddenSize() * Float.BYTES, 64);
        MemorySegment logits = work.allocate((long) c.vocabSize() * Float.BYTES, 64);
        float[][] out = new float[positions][c.vocabSize()];
        for (int t = 0; t < positions; t++) {
            cache.setValid(0, t, true);
            forward.forward(weights, table, table, layers, cache, 0, 1, 1, t + 1, new int[] {stream[t]}, new int[] {t}, x, logits);
            OptForward.readRow(logits, 0, out[t]);
        }
        return out;
    }
}
