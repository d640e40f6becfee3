package io.flexstream.engine;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token of one sequence from its logits, in Hugging Face's order: temperature, then top-k, then
 * top-p, then a draw from the remaining distribution. Each sequence owns its sampler and random stream, seeded from
 * its request, so its output does not depend on what else is in the batch.
 */
final class Sampler {

    private final SamplingParams params;
    private final SplittableRandom random;

    Sampler(SamplingParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    /** Returns the chosen token id; may modify {@code logits}. */
    int next(float[] logits) {
        if (params.isGreedy()) {
            return argmax(logits);
        }
        int vocab = logits.length;
        float inverseTemperature = 1f / params.temperature();
        for (int i = 0; i < vocab; i++) {
            logits[i] *= inverseTemperature;
        }
        if (params.topK() > 0 && params.topK() < vocab) {
            // Hugging Face keeps every token whose logit is at least the k-th largest (ties at the threshold stay).
            float threshold = kthLargest(logits, params.topK());
            for (int i = 0; i < vocab; i++) {
                if (logits[i] < threshold) {
                    logits[i] = Float.NEGATIVE_INFINITY;
                }
            }
        }
        float max = logits[argmax(logits)];
        double total = 0;
        double[] weights = new double[vocab];
        for (int i = 0; i < vocab; i++) {
            double w = logits[i] == Float.NEGATIVE_INFINITY ? 0 : Math.exp(logits[i] - max);
            weights[i] = w;
            total += w;
        }
        if (params.topP() < 1f) {
            applyTopP(weights, total);
            total = 0;
            for (double w : weights) {
                total += w;
            }
        }
        double draw = random.nextDouble() * total;
        int lastNonZero = -1;
        for (int i = 0; i < vocab; i++) {
            if (weights[i] == 0) {
                continue;
            }
            lastNonZero = i;
            draw -= weights[i];
            if (draw < 0) {
                return i;
            }
        }
        return lastNonZero; // rounding left a sliver of mass: the last candidate takes it
    }

    /**
     * Zeroes every weight outside the smallest set of most likely tokens whose mass reaches top_p (at least one token
     * always stays).
     */
    private void applyTopP(double[] weights, double total) {
        int vocab = weights.length;
        Integer[] boxed = new Integer[vocab];
        int candidates = 0;
        for (int i = 0; i < vocab; i++) {
            if (weights[i] > 0) {
                boxed[candidates++] = i;
            }
        }
        Integer[] sorted = Arrays.copyOf(boxed, candidates);
        // Descending weight, ties by lower id first for a deterministic cut.
        Arrays.sort(sorted, (a, b) -> weights[a] != weights[b] ? Double.compare(weights[b], weights[a]) : a - b);
        double target = params.topP() * total;
        double mass = 0;
        int keep = 0;
        while (keep < candidates) {
            mass += weights[sorted[keep]];
            keep++;
            if (mass >= target) {
                break;
            }
        }
        for (int i = keep; i < candidates; i++) {
            weights[sorted[i]] = 0;
        }
    }

    /** Index of the largest value; the lowest index wins ties, as torch.argmax does. */
    static int argmax(float[] values) {
        int best = 0;
        float bestValue = values[0];
        for (int i = 1; i < values.length; i++) {
            if (values[i] > bestValue) {
                bestValue = values[i];
                best = i;
            }
        }
        return best;
    }

    private static float kthLargest(float[] values, int k) {
        float[] copy = values.clone();
        Arrays.sort(copy);
        return copy[copy.length - k];
    }
}
