package io.flexstream.engine;

/**
 * One prompt to complete. Exactly one of {@code prompt} (text, tokenized by the model's tokenizer with its BOS) and
 * {@code promptTokenIds} (already tokenized, used as given) is set.
 *
 * @param id             caller's identifier, echoed in the result
 * @param prompt         prompt text, or null
 * @param promptTokenIds prompt token ids, or null
 * @param sampling       decoding settings
 */
public record GenerationRequest(String id, String prompt, int[] promptTokenIds, SamplingParams sampling) {

    public static GenerationRequest text(String id, String prompt, SamplingParams sampling) {
        return new GenerationRequest(id, prompt, null, sampling);
    }

    public static GenerationRequest tokens(String id, int[] promptTokenIds, SamplingParams sampling) {
        return new GenerationRequest(id, null, promptTokenIds, sampling);
    }
}
