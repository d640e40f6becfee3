package io.flexstream.engine;

/** Progress of a long generation call, for logs, progress bars and metrics. Called on the engine's thread. */
public interface GenerationListener {

    GenerationListener NONE = new GenerationListener() { };

    /** The prompts of the call were processed (prefill done). */
    default void prefillDone(int sequences, int promptTokens, long nanos) {
    }

    /**
     * The offloading engine finished schedule layer {@code layer} (0-based, of {@code layers}: the embedding, the
     * decoder layers, the head) of token step {@code token} (0 is the prefill) for every GPU batch of the block. A
     * step of a large model on disk takes minutes, so this is the finest progress an operator sees.
     */
    default void layerDone(int token, int layer, int layers) {
    }

    /** One decode step finished; {@code step} counts from 1, {@code active} sequences are still generating. */
    default void decodeStep(int step, int maxSteps, int active, long nanos) {
    }
}
