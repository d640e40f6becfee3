package io.flexstream.view;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flexstream.stream.avro.Completion;

import java.util.Map;
import java.util.TreeMap;

/**
 * What one minute of deduplicated completions of one model adds up to; the aggregate of the stats window store.
 * Immutable: {@link #add} returns a new value (Kafka Streams keeps the returned object).
 *
 * @param completions     completions in the window (duplicates already removed)
 * @param generatedTokens new tokens over those completions
 * @param promptTokens    prompt tokens over those completions
 * @param batchSizeSum    sum of each completion's batch size (mean = sum / completions, weighted by prompts)
 * @param batchSizeMax    largest batch seen
 * @param latencyMaxMs    largest latency seen, milliseconds
 * @param latencyBuckets  {@link LatencyHistogram} counts of latency = queued_ms + generation_ms, i.e. from the
 *                        prompt record's timestamp to the end of the block that completed it
 * @param finishReasons   completions per finish reason
 */
public record WindowStats(long completions, long generatedTokens, long promptTokens, long batchSizeSum,
                          int batchSizeMax, long latencyMaxMs, long[] latencyBuckets,
                          Map<String, Long> finishReasons) {

    public static WindowStats empty() {
        return new WindowStats(0, 0, 0, 0, 0, 0, new long[LatencyHistogram.BUCKETS], Map.of());
    }

    static long latencyMs(Completion c) {
        return Math.max(0, c.getQueuedMs()) + Math.max(0, c.getGenerationMs());
    }

    public WindowStats add(Completion c) {
        long latency = latencyMs(c);
        long[] buckets = latencyBuckets.clone();
        buckets[LatencyHistogram.bucketOf(latency)]++;
        Map<String, Long> reasons = new TreeMap<>(finishReasons);
        reasons.merge(c.getFinishReason(), 1L, Long::sum);
        return new WindowStats(completions + 1, generatedTokens + c.getTokenIds().size(),
                promptTokens + c.getPromptTokens(), batchSizeSum + c.getBatchSize(),
                Math.max(batchSizeMax, c.getBatchSize()), Math.max(latencyMaxMs, latency), buckets, reasons);
    }

    public long latencyQuantileMs(double q) {
        return LatencyHistogram.quantile(latencyBuckets, q, latencyMaxMs);
    }

    /** The published form (stats topic and {@code GET /stats}); rates are per minute because windows are. */
    ObjectNode toJson(String model, long windowStartMs, long windowEndMs) {
        ObjectNode n = ViewSerdes.JSON.createObjectNode();
        n.put("kind", "completions");
        n.put("model", model);
        n.put("window_start", windowStartMs);
        n.put("window_end", windowEndMs);
        double minutes = Math.max(1, windowEndMs - windowStartMs) / 60_000.0;
        n.put("completions", completions);
        n.put("completions_per_minute", completions / minutes);
        n.put("generated_tokens", generatedTokens);
        n.put("tokens_per_minute", generatedTokens / minutes);
        n.put("prompt_tokens", promptTokens);
        n.put("batch_size_mean", completions == 0 ? 0.0 : (double) batchSizeSum / completions);
        n.put("batch_size_max", batchSizeMax);
        n.put("latency_p50_ms", latencyQuantileMs(0.50));
        n.put("latency_p90_ms", latencyQuantileMs(0.90));
        n.put("latency_p99_ms", latencyQuantileMs(0.99));
        n.put("latency_max_ms", latencyMaxMs);
        ObjectNode reasons = n.putObject("finish_reasons");
        finishReasons.forEach(reasons::put);
        return n;
    }
}
