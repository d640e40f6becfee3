package io.flexstream.kernel;

/**
 * The exponent step of attention's softmax over the keys a query sees, shared by the fp32 and the compressed-cache
 * attention so that both normalise in the same order: per head, {@code exp(score - max)} for every valid key up to the
 * query's position, summed in key order (the order is part of the batch-invariance contract).
 */
public final class MaskedSoftmax {

    private MaskedSoftmax() {
    }

    /**
     * In place: {@code scores[h * kvLen + j] = exp(scores[h * kvLen + j] - max[h])} for valid keys j up to and
     * including {@code position}; {@code sum[h]} receives their sum. Scores of invalid keys are left as they were.
     */
    public static void exponentiate(float[] scores, float[] valid, float[] max, float[] sum, int heads, int kvLen,
                                    int position) {
        for (int h = 0; h < heads; h++) {
            float total = 0f;
            float m = max[h];
            int s0 = h * kvLen;
            for (int j = 0; j <= position; j++) {
                if (valid[j] != 0f) {
                    float e = (float) Math.exp(scores[s0 + j] - m);
                    scores[s0 + j] = e;
                    total += e; // in key order
                }
            }
            sum[h] = total;
        }
    }
}
