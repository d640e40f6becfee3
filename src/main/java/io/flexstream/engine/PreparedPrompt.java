package io.flexstream.engine;

/**
 * A request that passed validation, with its prompt token ids (BOS included for text prompts).
 *
 * @param request  the original request
 * @param tokenIds prompt ids the model will see
 */
public record PreparedPrompt(GenerationRequest request, int[] tokenIds) {

    public String id() {
        return request.id();
    }
}
