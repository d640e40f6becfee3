package io.flexstream.engine;

import io.flexstream.model.tokenizer.Gpt2Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;

/**
 * Runs any number of prompts as batches of similar length (so that left padding wastes little), then puts the
 * results back in the caller's order. Shared by both engines.
 */
final class LengthOrder {

    private LengthOrder() {
    }

    /**
     * @param batchSize sequences per batch (the last may be smaller)
     * @param runBatch  generates one batch of sequences to completion
     */
    static List<GenerationResult> generate(List<PreparedPrompt> prompts, int batchSize, int contextLength,
                                           Gpt2Tokenizer tokenizer, Consumer<List<SequenceState>> runBatch) {
        GenerationResult[] results = new GenerationResult[prompts.size()];
        Integer[] order = new Integer[prompts.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, Comparator.comparingInt(i -> prompts.get(i).tokenIds().length));
        for (int start = 0; start < order.length; start += batchSize) {
            int end = Math.min(order.length, start + batchSize);
            List<SequenceState> batch = new ArrayList<>(end - start);
            for (int i = start; i < end; i++) {
                batch.add(new SequenceState(prompts.get(order[i]), contextLength));
            }
            runBatch.accept(batch);
            for (int i = start; i < end; i++) {
                results[order[i]] = batch.get(i - start).result(tokenizer);
            }
        }
        return List.of(results);
    }
}
