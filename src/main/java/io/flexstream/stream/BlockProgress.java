package io.flexstream.stream;

import io.flexstream.engine.GenerationListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Progress of one block for the log and the metrics. A block of a large model offloaded to disk can take many
 * minutes; without this, its log is silent from "batch formed" to "block done". Lines come at most every
 * {@code intervalNanos} and not before one interval has passed, so short blocks log nothing extra.
 *
 * <p>The time left is estimated from the decode steps so far (prefill excluded, it is paid once): mean step time
 * times the steps left. It is an upper bound when sequences finish early (EOS, stop strings) and the engine stops at
 * the last active one.
 */
final class BlockProgress implements GenerationListener {

    private static final Logger LOG = LoggerFactory.getLogger(BlockProgress.class);

    private final long batchId;
    private final int size;
    private final long intervalNanos;
    private final StreamMetrics metrics;
    private final long startNanos = System.nanoTime();
    private long decodeStartNanos = -1;
    private long lastLogNanos = startNanos;

    BlockProgress(long batchId, int size, long intervalNanos, StreamMetrics metrics) {
        this.batchId = batchId;
        this.size = size;
        this.intervalNanos = intervalNanos;
        this.metrics = metrics;
    }

    @Override
    public void prefillDone(int sequences, int promptTokens, long nanos) {
        decodeStartNanos = System.nanoTime();
        if (decodeStartNanos - startNanos >= intervalNanos) {
            LOG.info("batch {}: prefill of {} sequences ({} prompt tokens) took {} s", batchId, sequences,
                    promptTokens, String.format("%.1f", nanos / 1e9));
            lastLogNanos = decodeStartNanos;
        }
    }

    @Override
    public void decodeStep(int step, int maxSteps, int active, long nanos) {
        metrics.blockProgress(step, maxSteps);
        long now = System.nanoTime();
        if (now - lastLogNanos < intervalNanos) {
            return;
        }
        lastLogNanos = now;
        long from = decodeStartNanos < 0 ? startNanos : decodeStartNanos;
        double perStep = (now - from) / 1e9 / Math.max(1, step);
        LOG.info("batch {} ({} prompts): token step {}/{}, {} sequences active, {} s elapsed, about {} s left",
                batchId, size, step, maxSteps, active, String.format("%.0f", (now - startNanos) / 1e9),
                String.format("%.0f", perStep * Math.max(0, maxSteps - step)));
    }
}
