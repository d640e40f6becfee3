package io.flexstream.policy;

/**
 * The LP optimum for one (gbs, nb): the policy (percent), its predicted times and memory, and the raw LP values.
 *
 * @param policy      the chosen policy, shares in percent
 * @param prediction  the cost model's prediction for it
 * @param objective   the LP objective, seconds per sequence of the block
 * @param values      the LP variables (fractions and seconds), indexed by {@link LpVariable#ordinal()}
 * @param formulation the rows it was solved under (pins not included)
 */
public record Solution(Policy policy, Prediction prediction, double objective, double[] values, Formulation formulation) {

    public Solution {
        values = values.clone();
    }

    /** Tokens per second of the objective: n / objective. */
    public double throughput() {
        return formulation.throughputOf(objective);
    }

    @Override
    public String toString() {
        return "Solution[" + policy + ", " + String.format(java.util.Locale.ROOT, "%.4f", throughput()) + " tok/s, "
                + prediction + "]";
    }
}
