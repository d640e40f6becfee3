package io.flexstream.policy;

import java.util.Arrays;

/**
 * {@code constant + sum(coefficient[v] * v)} over the {@link LpVariable}s: every cost-model term is one of these, because
 * for a fixed (gbs, nb) the times and byte counts are linear in the placement shares. Immutable.
 */
public record LinearForm(double constant, double[] coefficients) {

    public static final LinearForm ZERO = new LinearForm(0, new double[LpVariable.COUNT]);

    public LinearForm {
        if (coefficients.length != LpVariable.COUNT) {
            throw new IllegalArgumentException("a linear form has " + LpVariable.COUNT + " coefficients, got " + coefficients.length);
        }
        coefficients = coefficients.clone();
    }

    public static LinearForm constant(double c) {
        return new LinearForm(c, new double[LpVariable.COUNT]);
    }

    public static LinearForm of(LpVariable v, double coefficient) {
        return ZERO.plus(v, coefficient);
    }

    /** {@code coefficient * (v1 + v2 + ...)}: the usual shape "bytes x (share on host + share on disk)". */
    public static LinearForm sum(double coefficient, LpVariable... vs) {
        double[] c = new double[LpVariable.COUNT];
        for (LpVariable v : vs) c[v.ordinal()] += coefficient;
        return new LinearForm(0, c);
    }

    public LinearForm plus(LpVariable v, double coefficient) {
        double[] c = coefficients.clone();
        c[v.ordinal()] += coefficient;
        return new LinearForm(constant, c);
    }

    public LinearForm plus(double c) {
        return new LinearForm(constant + c, coefficients);
    }

    public LinearForm plus(LinearForm o) {
        double[] c = coefficients.clone();
        for (int i = 0; i < c.length; i++) c[i] += o.coefficients[i];
        return new LinearForm(constant + o.constant, c);
    }

    public LinearForm times(double k) {
        double[] c = coefficients.clone();
        for (int i = 0; i < c.length; i++) c[i] *= k;
        return new LinearForm(constant * k, c);
    }

    public double coefficient(LpVariable v) {
        return coefficients[v.ordinal()];
    }

    /** The value at {@code x}, indexed by {@link LpVariable#ordinal()}. */
    public double evaluate(double[] x) {
        double s = constant;
        for (int i = 0; i < coefficients.length; i++) s += coefficients[i] * x[i];
        return s;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LinearForm f && f.constant == constant && Arrays.equals(f.coefficients, coefficients);
    }

    @Override
    public int hashCode() {
        return 31 * Double.hashCode(constant) + Arrays.hashCode(coefficients);
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder().append(constant);
        for (LpVariable v : LpVariable.values()) {
            double c = coefficients[v.ordinal()];
            if (c != 0) b.append(c < 0 ? " - " : " + ").append(Math.abs(c)).append('*').append(v.label());
        }
        return b.toString();
    }
}
