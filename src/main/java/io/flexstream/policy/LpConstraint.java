package io.flexstream.policy;

/**
 * One row of the LP: {@code lower <= form <= upper}. Memory rows keep their capacity and relaxation factor so that an
 * infeasible search can say which tier overflowed and by how much.
 *
 * @param name     what the row means, e.g. "GPU memory in decode"
 * @param kind     what kind of row it is
 * @param form     the left-hand side (bytes for memory rows, seconds for time rows, fractions for placement rows)
 * @param lower    lower bound ({@code -infinity} for none)
 * @param upper    upper bound ({@code +infinity} for none)
 * @param capacity for memory rows the tier's capacity in bytes, else 0
 * @param alpha    for memory rows the relaxation factor applied to the capacity, else 0
 */
public record LpConstraint(String name, Kind kind, LinearForm form, double lower, double upper, double capacity, double alpha) {

    public enum Kind {
        /** T_PRE or T_GEN is at least one overlapped group of terms (the epigraph of a max). */
        TIME,
        /** A tier's peak bytes are at most alpha x its capacity. */
        MEMORY,
        /** The shares of one tensor class sum to 1, or FlexGen's "no activations on disk". */
        PLACEMENT,
        /** A share fixed by the user. */
        PIN
    }

    static LpConstraint time(String name, LpVariable t, LinearForm terms) {
        return new LpConstraint(name, Kind.TIME, LinearForm.of(t, 1).plus(terms.times(-1)), 0, Double.POSITIVE_INFINITY, 0, 0);
    }

    static LpConstraint memory(String name, LinearForm bytes, double capacity, double alpha) {
        return new LpConstraint(name, Kind.MEMORY, bytes, Double.NEGATIVE_INFINITY, alpha * capacity, capacity, alpha);
    }

    static LpConstraint equal(String name, Kind kind, LinearForm form, double value) {
        return new LpConstraint(name, kind, form, value, value, 0, 0);
    }

    /** How far {@code x} is outside the bounds, in the row's own units (0 when satisfied). */
    public double violation(double[] x) {
        double v = form.evaluate(x);
        return Math.max(0, Math.max(lower - v, v - upper));
    }

    /**
     * Whether {@code x} satisfies the row within a tolerance relative to the row's scale (LP solutions are exact only to
     * the solver's tolerances).
     */
    public boolean holds(double[] x, double relativeTolerance) {
        double scale = 1;
        if (Double.isFinite(upper)) scale = Math.max(scale, Math.abs(upper));
        if (Double.isFinite(lower)) scale = Math.max(scale, Math.abs(lower));
        return violation(x) <= relativeTolerance * scale;
    }
}
