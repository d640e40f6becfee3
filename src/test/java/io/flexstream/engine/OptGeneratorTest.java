package io.flexstream.engine;

import io.flexstream.kernel.CpuKernels;
import io.flexstream.model.Checkpoint;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.model.TinyModel;
import io.flexstream.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** End-to-end generation on tiny generated checkpoints, checked against a naive reference forward pass. */
class OptGeneratorTest {

    @TempDir
    static Path dir;
    static Path preLn;
    static OptGenerator engine;

    @BeforeAll
    static void writeModel() {
        preLn = dir.resolve("tiny-pre-ln");
        TinyModel.write(preLn, OptConfig.tiny(64, 2, 4, 50272), 7, DType.F32);
        engine = OptGenerator.load(preLn, new CpuKernels(), EngineOptions.defaults().withMaxBatchSize(8));
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    private static PreparedPrompt prompt(String id, String text, SamplingParams sampling) throws Exception {
        return engine.prepare(GenerationRequest.text(id, text, sampling));
    }

    @Test
    void greedyMatchesTheNaiveReferenceInAPaddedBatch() throws Exception {
        List<PreparedPrompt> prompts = List.of(
                prompt("a", "Hello", SamplingParams.greedy(6)),
                prompt("b", "The quick brown fox jumps over the lazy dog, again and again", SamplingParams.greedy(6)),
                prompt("c", "Kafka", SamplingParams.greedy(6)));
        List<GenerationResult> results = engine.generate(prompts);
        try (Arena arena = Arena.ofShared(); Checkpoint ckpt = Checkpoint.open(preLn)) {
            ReferenceOpt reference = new ReferenceOpt(OptWeights.load(ckpt, arena));
            for (int i = 0; i < prompts.size(); i++) {
                GenerationResult r = results.get(i);
                assertEquals(prompts.get(i).id(), r.id());
                int[] expected = reference.greedy(prompts.get(i).tokenIds(), r.tokenIds().length);
                assertArrayEquals(expected, r.tokenIds(), "prompt " + r.id());
            }
        }
    }

    @Test
    void postLayerNormModelWithProjectionsMatchesTheReference(@TempDir Path tmp) throws Exception {
        Path postLn = tmp.resolve("tiny-post-ln");
        OptConfig config = OptConfig.tiny(64, 2, 4, 50272).withPostLayerNorm(32);
        TinyModel.write(postLn, config, 11, DType.F16);
        try (OptGenerator post = OptGenerator.load(postLn, new CpuKernels(), EngineOptions.defaults());
             Arena arena = Arena.ofShared(); Checkpoint ckpt = Checkpoint.open(postLn)) {
            PreparedPrompt p = post.prepare(GenerationRequest.text("p", "Offloading engines", SamplingParams.greedy(5)));
            PreparedPrompt q = post.prepare(GenerationRequest.text("q", "A", SamplingParams.greedy(5)));
            List<GenerationResult> results = post.generate(List.of(p, q));
            ReferenceOpt reference = new ReferenceOpt(OptWeights.load(ckpt, arena));
            assertArrayEquals(reference.greedy(p.tokenIds(), results.get(0).tokenIds().length), results.get(0).tokenIds());
            assertArrayEquals(reference.greedy(q.tokenIds(), results.get(1).tokenIds().length), results.get(1).tokenIds());
        }
    }

    @Test
    void aPromptGeneratesTheSameTokensAloneAndInABatchWithLongerPrompts() throws Exception {
        SamplingParams sampled = new SamplingParams(10, 0.8f, 0.9f, 40, 1234L, List.of());
        for (SamplingParams sampling : List.of(SamplingParams.greedy(10), sampled)) {
            PreparedPrompt shortPrompt = prompt("short", "Hi", sampling);
            GenerationResult alone = engine.generate(List.of(shortPrompt)).getFirst();
            List<PreparedPrompt> batch = List.of(
                    prompt("long1", "A much longer prompt that forces left padding on the short one", sampling),
                    shortPrompt,
                    prompt("long2", "Another fairly long prompt, with punctuation; and more words.", sampling));
            GenerationResult batched = engine.generate(batch).get(1);
            assertEquals("short", batched.id());
            assertArrayEquals(alone.tokenIds(), batched.tokenIds(), "sampling " + sampling);
            assertEquals(alone.text(), batched.text());
        }
    }

    @Test
    void sameSeedSameOutputAndSeedsMatter() throws Exception {
        List<int[]> outputs = new ArrayList<>();
        for (long seed : new long[] {1, 1, 2, 3, 4}) {
            SamplingParams s = new SamplingParams(12, 1.5f, 1f, 0, seed, List.of());
            outputs.add(engine.generate(List.of(prompt("s", "Sampling test", s))).getFirst().tokenIds());
        }
        assertArrayEquals(outputs.get(0), outputs.get(1));
        long distinct = outputs.stream().map(java.util.Arrays::toString).distinct().count();
        assertTrue(distinct >= 3, "four seeds at temperature 1.5 gave only " + distinct + " distinct outputs");
    }

    @Test
    void perRequestTokenBudgetsInOneBatch() throws Exception {
        List<PreparedPrompt> prompts = new ArrayList<>();
        int[] budgets = {1, 3, 7, 2, 5};
        for (int i = 0; i < budgets.length; i++) {
            prompts.add(prompt("r" + i, "Budget number " + i, SamplingParams.greedy(budgets[i])));
        }
        List<GenerationResult> results = engine.generate(prompts);
        for (int i = 0; i < budgets.length; i++) {
            GenerationResult r = results.get(i);
            assertEquals("r" + i, r.id());
            assertEquals(budgets[i], r.tokenIds().length);
            assertEquals(FinishReason.LENGTH, r.finishReason());
            // Finishing early must not change what the others generate.
            GenerationResult alone = engine.generate(List.of(prompts.get(i))).getFirst();
            assertArrayEquals(alone.tokenIds(), r.tokenIds());
        }
    }

    @Test
    void stopStringEndsGenerationAndIsCutFromTheText() throws Exception {
        GenerationResult free = engine.generate(List.of(prompt("f", "Stop here", SamplingParams.greedy(12)))).getFirst();
        String text = free.text();
        assertTrue(text.length() > 4, "need some generated text, got '" + text + "'");
        String stop = text.substring(text.length() / 2, text.length() / 2 + 2);
        int expectedCut = text.indexOf(stop);
        SamplingParams withStop = new SamplingParams(12, 0f, 1f, 0, 0L, List.of(stop));
        GenerationResult stopped = engine.generate(List.of(prompt("f", "Stop here", withStop))).getFirst();
        assertEquals(FinishReason.STOP, stopped.finishReason());
        assertEquals(text.substring(0, expectedCut), stopped.text());
        assertTrue(stopped.tokenIds().length < free.tokenIds().length || expectedCut + stop.length() == text.length());
    }

    @Test
    void eosEndsGenerationWithoutBeingReturned(@TempDir Path tmp) throws Exception {
        PreparedPrompt p = prompt("e", "End of sequence", SamplingParams.greedy(8));
        int first = engine.generate(List.of(p)).getFirst().tokenIds()[0];
        // Same weights, but the model's EOS is the token it generates first: it must stop at once.
        Path copy = tmp.resolve("eos-model");
        TinyModel.write(copy, OptConfig.tiny(64, 2, 4, 50272), 7, DType.F32);
        String cfg = Files.readString(copy.resolve("config.json")).replaceAll("\"eos_token_id\"\\s*:\\s*\\d+",
                "\"eos_token_id\": " + first);
        Files.writeString(copy.resolve("config.json"), cfg);
        try (OptGenerator eosEngine = OptGenerator.load(copy, new CpuKernels(), EngineOptions.defaults())) {
            GenerationResult r = eosEngine.generate(List.of(eosEngine.prepare(p.request()))).getFirst();
            assertEquals(FinishReason.EOS, r.finishReason());
            assertEquals(0, r.tokenIds().length);
            assertEquals("", r.text());
        }
    }

    @Test
    void largeCallsAreSplitAndKeepTheirOrder() throws Exception {
        List<PreparedPrompt> prompts = new ArrayList<>();
        for (int i = 0; i < 19; i++) {
            prompts.add(prompt("id" + i, "x".repeat(1 + (i * 7) % 13) + " prompt " + i, SamplingParams.greedy(3)));
        }
        List<GenerationResult> results = engine.generate(prompts);
        assertEquals(19, results.size());
        for (int i = 0; i < 19; i++) {
            assertEquals("id" + i, results.get(i).id());
            assertArrayEquals(engine.generate(List.of(prompts.get(i))).getFirst().tokenIds(), results.get(i).tokenIds());
        }
    }

    @Test
    void badRequestsAreRefusedWithTheirReason() {
        var empty = assertThrows(InvalidRequestException.class,
                () -> engine.prepare(GenerationRequest.text("x", "", SamplingParams.greedy(4))));
        assertEquals(InvalidRequestException.Reason.EMPTY_PROMPT, empty.reason());
        var tooLong = assertThrows(InvalidRequestException.class,
                () -> engine.prepare(GenerationRequest.tokens("x", new int[engine.contextLength()],
                        SamplingParams.greedy(4))));
        assertEquals(InvalidRequestException.Reason.PROMPT_TOO_LONG, tooLong.reason());
        var badId = assertThrows(InvalidRequestException.class,
                () -> engine.prepare(GenerationRequest.tokens("x", new int[] {2, 99999}, SamplingParams.greedy(4))));
        assertEquals(InvalidRequestException.Reason.BAD_TOKEN_ID, badId.reason());
        var badTemp = assertThrows(InvalidRequestException.class,
                () -> engine.prepare(GenerationRequest.text("x", "hi", new SamplingParams(4, -1f, 1f, 0, 0, null))));
        assertEquals(InvalidRequestException.Reason.BAD_PARAMETER, badTemp.reason());
        assertTrue(badTemp.getMessage().contains("temperature"));
    }

    @Test
    void textPromptsStartWithBosAndTokenPromptsAreTakenAsGiven() throws Exception {
        PreparedPrompt text = prompt("t", "Hello world", SamplingParams.greedy(1));
        assertEquals(2, text.tokenIds()[0]);
        PreparedPrompt ids = engine.prepare(GenerationRequest.tokens("i", new int[] {5, 6, 7}, SamplingParams.greedy(1)));
        assertArrayEquals(new int[] {5, 6, 7}, ids.tokenIds());
        assertNotEquals(0, engine.generate(List.of(ids)).getFirst().tokenIds().length);
    }
}
