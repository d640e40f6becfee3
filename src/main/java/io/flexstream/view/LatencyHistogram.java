package io.flexstream.view;

/**
 * Fixed log-scale buckets for latency percentiles that merge by addition, so a window's percentiles cost 96 longs of
 * state whatever its record count. Bucket {@code i} holds values up to {@code 2^(i/4)} ms (four buckets per doubling:
 * a reported percentile is at most ~19% above the true one); the last bucket also takes everything above 2^23.75 ms
 * (about 3.9 hours).
 */
final class LatencyHistogram {

    static final int BUCKETS = 96;

    private LatencyHistogram() {
    }

    /** Upper bound of bucket {@code i}, milliseconds (inclusive). */
    static long upperBound(int i) {
        return (long) Math.ceil(Math.pow(2, i / 4.0));
    }

    static int bucketOf(long millis) {
        if (millis <= 1) {
            return 0;
        }
        int i = (int) Math.ceil(4 * Math.log(millis) / Math.log(2));
        // Guard the floating-point edges: the lowest bucket whose (rounded-up) bound holds the value.
        while (i < BUCKETS - 1 && upperBound(i) < millis) {
            i++;
        }
        while (i > 0 && upperBound(i - 1) >= millis) {
            i--;
        }
        return Math.min(i, BUCKETS - 1);
    }

    /**
     * The {@code q}-quantile (0 &lt; q &le; 1) as the upper bound of the bucket holding that rank, capped at
     * {@code max} (the largest value seen), or 0 for an empty histogram.
     */
    static long quantile(long[] counts, double q, long max) {
        long total = 0;
        for (long c : counts) {
            total += c;
        }
        if (total == 0) {
            return 0;
        }
        long rank = Math.max(1, (long) Math.ceil(q * total));
        long seen = 0;
        for (int i = 0; i < counts.length; i++) {
            seen += counts[i];
            if (seen >= rank) {
                return Math.min(upperBound(i), max);
            }
        }
        return max;
    }
}
