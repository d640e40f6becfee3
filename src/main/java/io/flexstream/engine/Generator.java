package io.flexstream.engine;

import java.util.List;

/**
 * What the rest of FlexStream (the CLI, the Kafka consumer, benchmarks) sees of the engine: validate prompts, then
 * complete batches of them. Implementations are not thread-safe: one engine thread calls them.
 */
public interface Generator extends AutoCloseable {

    /**
     * Tokenizes and validates a request before it joins a batch.
     *
     * @throws InvalidRequestException for an empty prompt, a prompt that leaves no room for one new token in the
     *                                 model's context, a token id outside the vocabulary, or a bad sampling parameter
     */
    PreparedPrompt prepare(GenerationRequest request) throws InvalidRequestException;

    /** Completes every prompt; results come back in the order of {@code prompts}. */
    List<GenerationResult> generate(List<PreparedPrompt> prompts, GenerationListener listener);

    default List<GenerationResult> generate(List<PreparedPrompt> prompts) {
        return generate(prompts, GenerationListener.NONE);
    }

    /** Model name for completion records (the checkpoint directory's name unless configured). */
    String modelName();

    /** Maximum prompt + generated tokens per sequence (OPT: max_position_embeddings). */
    int contextLength();

    @Override
    void close();
}
