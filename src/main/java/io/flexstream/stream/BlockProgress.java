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
 * the last active one. The offloading engine also reports each schedule layer; a line then names the layer too, and
 * during the prefill (before any decode step has a time) it estimates the prefill's own remainder from its layers.
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
    /** Decode steps done and the most the block can take, as last reported (0 before the first). */
    private int decodeSteps;
    private int maxSteps;

    /** Where lines go: the log in production, a list in tests. */
    private final java.util.function.Consumer<String> sink;

    BlockProgress(long batchId, int size, long intervalNanos, StreamMetrics metrics) {
        this(batchId, size, intervalNanos, metrics, LOG::info);
    }

    BlockProgress(long batchId, int size, long intervalNanos, StreamMetrics metrics,
                  java.util.function.Consumer<String> sink) {
        this.sink = sink;
        this.batchId = batchId;
        this.size = size;
        this.intervalNanos = intervalNanos;
        this.metrics = metrics;
    }

    @Override
    public void prefillDone(int sequences, int promptTokens, long nanos) {
        decodeStartNanos = System.nanoTime();
        if (decodeStartNanos - startNanos >= intervalNanos) {
            sink.accept(String.format("batch %d: prefill of %d sequences (%d prompt tokens) took %.1f s", batchId,
                    sequences, promptTokens, nanos / 1e9));
            lastLogNanos = decodeStartNanos;
        }
    }

    @Override
    public void layerDone(int token, int layer, int layers) {
        long now = System.nanoTime();
        if (now - lastLogNanos < intervalNanos) {
            return;
        }
        lastLogNanos = now;
        String elapsed = String.format(java.util.Locale.ROOT, "%.0f", (now - startNanos) / 1e9);
        if (token == 0) {
            double perLayer = (now - startNanos) / 1e9 / (layer + 1);
            sink.accept(String.format("batch %d (%d prompts): prefill, layer %d/%d done, %s s elapsed, prefill about "
                    + "%.0f s left", batchId, size, layer + 1, layers, elapsed, perLayer * (layers - layer - 1)));
        } else {
            sink.accept(String.format("batch %d (%d prompts): token step %d%s, layer %d/%d done, %s s elapsed%s",
                    batchId, size, token, maxSteps == 0 ? "" : "/" + maxSteps, layer + 1, layers, elapsed,
                    decodeSteps == 0 ? ""
                            : String.format(", about %.0f s left",
                            stepSeconds(now) * (maxSteps - token + 1 - (layer + 1.0) / layers))));
        }
    }

    private double stepSeconds(long now) {
        return (now - decodeStartNanos) / 1e9 / Math.max(1, decodeSteps);
    }

    @Override
    public void decodeStep(int step, int maxSteps, int active, long nanos) {
        metrics.blockProgress(step, maxSteps);
        this.decodeSteps = step;
        this.maxSteps = maxSteps;
        long now = System.nanoTime();
        if (now - lastLogNanos < intervalNanos) {
            return;
        }
        lastLogNanos = now;
        long from = decodeStartNanos < 0 ? startNanos : decodeStartNanos;
        double perStep = (now - from) / 1e9 / Math.max(1, step);
        sink.accept(String.format("batch %d (%d prompts): token step %d/%d, %d sequences active, %.0f s elapsed, "
                + "about %.0f s left", batchId, size, step, maxSteps, active, (now - startNanos) / 1e9,
                perStep * Math.max(0, maxSteps - step)));
    }
}
