package io.flexstream.engine;

/** Progress of a long generation call, for logs, progress bars and metrics. Called on the engine's thread. */
public interface GenerationListener {

    GenerationListener NONE = new GenerationListener() { };

    /** The prompts of the call were processed (prefill done). */
    default void prefillDone(int sequences, int promptTokens, long nanos) {
    }

    /** One decode step finished; {@code step} counts from 1, {@code active} sequences are still generating. */
    default void decodeStep(int step, int maxSteps, int active, long nanos) {
    }
}
