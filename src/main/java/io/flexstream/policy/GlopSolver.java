package io.flexstream.policy;

import com.google.ortools.Loader;
import com.google.ortools.linearsolver.MPConstraint;
import com.google.ortools.linearsolver.MPObjective;
import com.google.ortools.linearsolver.MPSolver;
import com.google.ortools.linearsolver.MPVariable;

import java.util.List;

/**
 * Solves the policy LPs with OR-Tools' GLOP simplex. The native library is loaded once, on first use (about 0.45 s, and
 * it unpacks ~65 MB into java.io.tmpdir), so commands that never search never pay for it.
 *
 * <p>Rows are scaled before they reach GLOP: memory rows are in bytes (1e9..1e12) while time rows are in seconds, and
 * GLOP's tolerances are absolute, so each row is divided by its bound's magnitude.
 */
final class GlopSolver {

    private static volatile long loadNanos = -1;

    private GlopSolver() {
    }

    /** Loads the OR-Tools natives if not loaded yet; returns the nanoseconds the (first) load took. */
    static long ensureLoaded() {
        if (loadNanos < 0) {
            synchronized (GlopSolver.class) {
                if (loadNanos < 0) {
                    long t0 = System.nanoTime();
                    Loader.loadNativeLibraries();
                    loadNanos = System.nanoTime() - t0;
                }
            }
        }
        return loadNanos;
    }

    /**
     * A reusable GLOP model for a sequence of LPs with the same rows (one search: every (gbs, nb) has the same row
     * structure, only coefficients and bounds change). Reuse avoids rebuilding ~200 JNI objects per LP, which cost
     * more than GLOP's solve of these 11-variable LPs. Not thread-safe: one per search.
     */
    static final class Session implements AutoCloseable {
        private MPSolver solver;
        private MPVariable[] v;
        private MPConstraint[] c;

        /** The optimum's variable values (indexed by {@link LpVariable#ordinal()}), or null when the LP is infeasible. */
        double[] minimise(List<LpConstraint> rows, LinearForm objective) {
            ensureLoaded();
            if (solver == null || c.length != rows.size()) rebuild(rows.size());
            for (int i = 0; i < c.length; i++) {
                LpConstraint r = rows.get(i);
                double k = scale(r);
                double constant = r.form().constant();
                c[i].setBounds(Double.isInfinite(r.lower()) ? Double.NEGATIVE_INFINITY : (r.lower() - constant) / k,
                        Double.isInfinite(r.upper()) ? Double.POSITIVE_INFINITY : (r.upper() - constant) / k);
                for (LpVariable x : LpVariable.values()) c[i].setCoefficient(v[x.ordinal()], r.form().coefficient(x) / k);
            }
            MPObjective obj = solver.objective();
            for (LpVariable x : LpVariable.values()) obj.setCoefficient(v[x.ordinal()], objective.coefficient(x));
            obj.setMinimization();
            MPSolver.ResultStatus status = solver.solve();
            if (status == MPSolver.ResultStatus.INFEASIBLE) return null;
            if (status != MPSolver.ResultStatus.OPTIMAL) {
                throw new IllegalStateException("GLOP returned " + status + " for the policy LP");
            }
            double[] x = new double[LpVariable.COUNT];
            for (int i = 0; i < x.length; i++) x[i] = v[i].solutionValue();
            return x;
        }

        private void rebuild(int rowCount) {
            close();
            solver = newSolver();
            v = variables(solver);
            c = new MPConstraint[rowCount];
            for (int i = 0; i < rowCount; i++) c[i] = solver.makeConstraint(0, 0, "");
        }

        @Override
        public void close() {
            if (solver != null) solver.delete();
            solver = null;
        }
    }

    /** GLOP without presolve: these LPs are tiny, and presolve costs more than it saves. */
    private static MPSolver newSolver() {
        MPSolver solver = MPSolver.createSolver("GLOP");
        if (solver == null) throw new IllegalStateException("OR-Tools has no GLOP solver");
        solver.setSolverSpecificParametersAsString("use_preprocessing: false");
        return solver;
    }

    /**
     * The elastic version of the LP: every row for which {@code relax} is true may be violated at a cost, and the solver
     * minimises the total violation (each row's violation measured relative to its bound). Returns each row's
     * violation in the row's own units at that optimum (0 for rows that hold), in the order of {@code rows}; null when
     * even the relaxed LP is infeasible (the rows that may not be violated contradict each other).
     */
    static double[] minimalViolations(List<LpConstraint> rows, java.util.function.Predicate<LpConstraint> relax) {
        ensureLoaded();
        MPSolver solver = newSolver();
        try {
            MPVariable[] v = variables(solver);
            MPObjective obj = solver.objective();
            MPVariable[][] slacks = new MPVariable[rows.size()][];
            for (int i = 0; i < rows.size(); i++) {
                LpConstraint r = rows.get(i);
                if (relax.test(r)) {
                    MPVariable below = solver.makeNumVar(0, Double.POSITIVE_INFINITY, "under" + i);
                    MPVariable above = solver.makeNumVar(0, Double.POSITIVE_INFINITY, "over" + i);
                    slacks[i] = new MPVariable[] {below, above};
                    obj.setCoefficient(below, 1);
                    obj.setCoefficient(above, 1);
                }
                addRow(solver, v, r, slacks[i]);
            }
            obj.setMinimization();
            MPSolver.ResultStatus status = solver.solve();
            if (status == MPSolver.ResultStatus.INFEASIBLE) return null;
            if (status != MPSolver.ResultStatus.OPTIMAL) {
                throw new IllegalStateException("GLOP returned " + status + " for the relaxed policy LP");
            }
            double[] out = new double[rows.size()];
            for (int i = 0; i < out.length; i++) {
                if (slacks[i] != null) {
                    double scale = scale(rows.get(i));
                    out[i] = (slacks[i][0].solutionValue() + slacks[i][1].solutionValue()) * scale;
                }
            }
            return out;
        } finally {
            solver.delete();
        }
    }

    private static MPVariable[] variables(MPSolver solver) {
        MPVariable[] v = new MPVariable[LpVariable.COUNT];
        for (LpVariable x : LpVariable.values()) {
            v[x.ordinal()] = solver.makeNumVar(0, x.isShare() ? 1 : Double.POSITIVE_INFINITY, x.label());
        }
        return v;
    }

    /** Adds {@code lower <= form <= upper}, divided by the row's scale, with optional slacks (row - above + below). */
    private static void addRow(MPSolver solver, MPVariable[] v, LpConstraint r, MPVariable[] slack) {
        double k = scale(r);
        double constant = r.form().constant();
        double lo = Double.isInfinite(r.lower()) ? Double.NEGATIVE_INFINITY : (r.lower() - constant) / k;
        double hi = Double.isInfinite(r.upper()) ? Double.POSITIVE_INFINITY : (r.upper() - constant) / k;
        MPConstraint c = solver.makeConstraint(lo, hi, "");
        for (LpVariable x : LpVariable.values()) {
            double a = r.form().coefficient(x);
            if (a != 0) c.setCoefficient(v[x.ordinal()], a / k);
        }
        if (slack != null) {
            c.setCoefficient(slack[0], 1);
            c.setCoefficient(slack[1], -1);
        }
    }

    private static double scale(LpConstraint r) {
        double k = 1;
        if (Double.isFinite(r.upper())) k = Math.max(k, Math.abs(r.upper()));
        if (Double.isFinite(r.lower())) k = Math.max(k, Math.abs(r.lower()));
        return k;
    }
}
