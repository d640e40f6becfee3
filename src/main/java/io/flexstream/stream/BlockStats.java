package io.flexstream.stream;

/**
 * What every completion of one engine block records about it.
 *
 * @param batchId      node-local batch number
 * @param batchSize    prompts in the batch
 * @param policy       the batch sizer's description
 * @param startNanos   {@link System#nanoTime()} when generation started
 * @param generationMs wall time of the generate call, milliseconds
 */
public record BlockStats(long batchId, int batchSize, String policy, long startNanos, long generationMs) {
}
