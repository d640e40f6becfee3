package io.flexstream.engine;

/**
 * The completion of one request.
 *
 * @param id           the request's id
 * @param text         decoded generated text (stop string and EOS excluded)
 * @param tokenIds     generated token ids only (EOS excluded; for a stop, the tokens up to and including the one
 *                     that completed the stop string)
 * @param promptTokens number of prompt tokens the model saw
 * @param finishReason why generation ended
 */
public record GenerationResult(String id, String text, int[] tokenIds, int promptTokens, FinishReason finishReason) {
}
