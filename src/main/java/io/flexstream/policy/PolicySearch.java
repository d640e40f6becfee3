package io.flexstream.policy;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Finds the policy with the highest predicted throughput: an LP over the nine placement shares per (gbs, nb), inside
 * FlexGen's outer enumeration (FLEXGEN.md 3.7):
 * <ul>
 *   <li>gbs runs 1, 2, 3, 4, 8, 16, ... and stops at the first gbs where even nb = 1 is infeasible;</li>
 *   <li>for each gbs, the largest feasible nb ({@link #maxGpuBatches}) comes from doubling nb until the LP is
 *   infeasible, then bisecting;</li>
 *   <li>nb then runs 1..nb_ub, stopping early as soon as throughput falls below the previous nb's; the best is kept
 *   (a later candidate replaces it only if strictly better).</li>
 * </ul>
 * Pinned gbs or nb replace their enumeration; pinned shares are equality rows. The returned policy holds PERCENT.
 * Thread-safe: it keeps no mutable state.
 */
public final class PolicySearch {

    /** Beyond this block size the enumeration stops even if memory would allow more (keeps the search finite). */
    static final int MAX_BLOCK = 1 << 20;

    private final CostModel model;

    public PolicySearch(CostModel model) {
        this.model = model;
    }

    public CostModel costModel() {
        return model;
    }

    /**
     * The best policy found and how the search went.
     *
     * @param best      the optimum
     * @param lpsSolved LPs solved (each a GLOP call)
     * @param nanos     wall time of the search, excluding the one-time native load
     */
    public record Result(Solution best, int lpsSolved, long nanos) {
    }

    /** Runs the full search; throws {@link InfeasiblePolicyException} naming the binding constraint if nothing fits. */
    public Result search(Workload w, Pins pins) {
        GlopSolver.ensureLoaded();
        long t0 = System.nanoTime();
        try (Memo memo = new Memo(w, pins)) {
            return search(memo, w, pins, t0);
        }
    }

    private Result search(Memo memo, Workload w, Pins pins, long t0) {
        int blockCap = pins.maxBlockSize() == null ? MAX_BLOCK : pins.maxBlockSize();
        Solution best = null;
        for (int gbs : gpuBatchSizes(pins, blockCap)) {
            int nbCap = blockCap / gbs;
            if (nbCap == 0) break;
            int from, to;
            if (pins.numGpuBatches() != null) {
                from = to = pins.numGpuBatches();
                if (to > nbCap || memo.solve(gbs, to).isEmpty()) break;
            } else {
                from = 1;
                to = maxGpuBatches(memo, gbs, nbCap);
                if (to == 0) break;
            }
            double previous = Double.NEGATIVE_INFINITY;
            for (int nb = from; nb <= to; nb++) {
                Optional<Solution> s = memo.solve(gbs, nb);
                if (s.isEmpty()) break;
                double tput = s.get().throughput();
                if (tput < previous) break;   // FlexGen's early stop
                previous = tput;
                if (best == null || better(s.get(), best)) best = s.get();
            }
        }
        if (best == null) {
            int gbs = pins.gpuBatchSize() == null ? 1 : pins.gpuBatchSize();
            int nb = pins.numGpuBatches() == null ? 1 : pins.numGpuBatches();
            String why = pins.maxBlockSize() != null && (long) gbs * nb > pins.maxBlockSize()
                    ? "gpu batch size x number of gpu batches " + gbs + "x" + nb + " exceeds the maximum block size " + pins.maxBlockSize()
                    : null;
            List<String> binding = why != null ? List.of(why) : diagnose(w, gbs, nb, pins);
            throw new InfeasiblePolicyException("no feasible policy for " + w.model().name() + ", prompt " + w.promptLen()
                    + ", generate " + w.genLen() + " (at gbs " + gbs + ", nb " + nb + ")", binding);
        }
        return new Result(best, memo.solved, System.nanoTime() - t0);
    }

    /**
     * Whether {@code candidate} beats {@code best} (gbs ascending). FlexGen mode keeps FlexGen's strict comparison, so
     * that section 3.9's results reproduce. In FlexStream mode a candidate whose predicted throughput TIES the best
     * (within {@link #TIE}, i.e. numerically equal) wins when its GPU batch is larger. Ties are common here: when a
     * term that grows with the block's sequences binds (disk bytes or disk requests of the cache, weights on a slow
     * disk), every (gbs, nb) of one block size predicts the same tokens/s, and the smallest gbs came first. The engine
     * runs fewer, larger GPU batches faster (per-batch costs the model leaves out): bench policy on the 2-core VM
     * measured 8x4 at 44-49 tokens/s and 32x1 at 47-87 with the cache or the weights on disk, in the same runs.
     */
    private boolean better(Solution candidate, Solution best) {
        if (candidate.throughput() > best.throughput()) {
            return model.mode() == CostModel.Mode.FLEXGEN || candidate.throughput() > best.throughput() * (1 + TIE)
                    || candidate.policy().gpuBatchSize() >= best.policy().gpuBatchSize();
        }
        return model.mode() == CostModel.Mode.FLEXSTREAM && candidate.throughput() >= best.throughput() * (1 - TIE)
                && candidate.policy().gpuBatchSize() > best.policy().gpuBatchSize();
    }

    /** Relative difference of predicted throughputs below which FlexStream mode calls them a tie. */
    static final double TIE = 1e-6;

    /** The LP optimum for one (gbs, nb) with the pins' shares, or empty when infeasible. */
    public Optional<Solution> solve(Workload w, int gbs, int nb, Pins pins) {
        try (GlopSolver.Session session = new GlopSolver.Session()) {
            return solve(session, w, gbs, nb, pins);
        }
    }

    /**
     * The LP optimum; where the engine fuses the decode of this many GPU batches ({@link CostModel#fusesDecode}), the
     * better of the general LP and the fused one (which pins the cache and activations to the device).
     */
    private Optional<Solution> solve(GlopSolver.Session session, Workload w, int gbs, int nb, Pins pins) {
        Optional<Solution> general = solve(session, model.formulate(w, gbs, nb), w, gbs, nb, pins);
        if (!model.fusesDecode(nb)) {
            return general;
        }
        Optional<Solution> fused = solve(session, model.formulateFused(w, gbs, nb), w, gbs, nb, pins);
        if (general.isEmpty() || fused.isEmpty()) {
            return general.isEmpty() ? fused : general;
        }
        return fused.get().throughput() > general.get().throughput() ? fused : general;
    }

    private Optional<Solution> solve(GlopSolver.Session session, Formulation f, Workload w, int gbs, int nb,
                                     Pins pins) {
        List<LpConstraint> rows = new ArrayList<>(f.constraints());
        rows.addAll(pinRows(pins));
        double[] x = session.minimise(rows, f.objective());
        if (x == null) return Optional.empty();
        return Optional.of(new Solution(toPolicy(w, gbs, nb, x), f.evaluate(x), f.objective().evaluate(x), x, f));
    }

    /** nb_ub: the largest nb whose LP is feasible for this gbs (0 if nb = 1 is not), capped at {@code MAX_BLOCK / gbs}. */
    public int maxGpuBatches(Workload w, int gbs, Pins pins) {
        GlopSolver.ensureLoaded();
        int cap = Math.max(1, (pins.maxBlockSize() == null ? MAX_BLOCK : pins.maxBlockSize()) / gbs);
        try (Memo memo = new Memo(w, pins)) {
            return maxGpuBatches(memo, gbs, cap);
        }
    }

    private static int maxGpuBatches(Memo memo, int gbs, int cap) {
        if (memo.solve(gbs, 1).isEmpty()) return 0;
        int lo = 1;                       // feasible
        long hi = 2;                      // candidate; becomes the first infeasible (or cap + 1)
        while (hi <= cap && memo.solve(gbs, (int) hi).isPresent()) {
            lo = (int) hi;
            hi *= 2;
        }
        if (hi > cap) {
            if (memo.solve(gbs, cap).isPresent()) return cap;
            hi = cap;
        }
        while (hi - lo > 1) {
            int mid = (int) ((lo + hi) >>> 1);
            if (memo.solve(gbs, mid).isPresent()) lo = mid;
            else hi = mid;
        }
        return lo;
    }

    /**
     * Why (gbs, nb) is infeasible: the rows that must be violated, found by the elastic LP that lets memory rows and pins
     * be exceeded at a cost and minimises the total relative excess. Largest relative excess first, e.g. "GPU memory in
     * decode: needs 23.1 GB, capacity 15 GB x alpha 0.8" (GB = 2^30 bytes). Empty when the LP is feasible.
     */
    public List<String> diagnose(Workload w, int gbs, int nb, Pins pins) {
        Formulation f = model.formulate(w, gbs, nb);
        List<LpConstraint> rows = new ArrayList<>(f.constraints());
        rows.addAll(pinRows(pins));
        // Pins are the user's word: first see whether some placement honours them if memory may overflow; only if
        // not, let the pins give way too (a pin that contradicts the placement rules, or pins against each other).
        double[] excess = GlopSolver.minimalViolations(rows, r -> r.kind() == LpConstraint.Kind.MEMORY);
        if (excess == null) {
            excess = GlopSolver.minimalViolations(rows,
                    r -> r.kind() == LpConstraint.Kind.MEMORY || r.kind() == LpConstraint.Kind.PIN);
        }
        if (excess == null) return List.of("the placement rules and pins contradict each other");
        record Binding(String text, double relative) {
        }
        List<Binding> out = new ArrayList<>();
        for (int i = 0; i < rows.size(); i++) {
            LpConstraint r = rows.get(i);
            double bound = Math.max(1, Math.abs(r.kind() == LpConstraint.Kind.MEMORY ? r.upper() : 1));
            double relative = excess[i] / bound;
            if (relative <= 1e-7) continue;
            if (r.kind() == LpConstraint.Kind.MEMORY) {
                out.add(new Binding(String.format(Locale.ROOT, "%s: needs %.1f GB, capacity %s GB x alpha %s", r.name(),
                        (r.upper() + excess[i]) / HardwareProfile.GIB, Policy.fmt(r.capacity() / HardwareProfile.GIB),
                        Policy.fmt(r.alpha())), relative));
            } else {
                out.add(new Binding(String.format(Locale.ROOT, "%s cannot hold (off by %.2f percent points)", r.name(),
                        100 * excess[i]), relative));
            }
        }
        out.sort(Comparator.comparingDouble(Binding::relative).reversed());
        return out.stream().map(Binding::text).toList();
    }

    /**
     * Predicts a fixed policy without solving anything (FlexGen's evaluation of hand-set policies), with the fused
     * decode where the engine would run one: the cache and activations 100% on the device and several GPU batches.
     */
    public Prediction evaluate(Workload w, Policy p) {
        boolean fused = model.fusesDecode(p.numGpuBatches()) && p.cacheGpu() >= 100 && p.activationGpu() >= 100;
        return (fused ? model.formulateFused(w, p.gpuBatchSize(), p.numGpuBatches())
                : model.formulate(w, p.gpuBatchSize(), p.numGpuBatches())).evaluate(p);
    }

    static List<LpConstraint> pinRows(Pins pins) {
        List<LpConstraint> rows = new ArrayList<>();
        pins.shares().forEach((v, pct) -> rows.add(LpConstraint.equal("pin " + v.label() + " = " + Policy.fmt(pct) + "%",
                LpConstraint.Kind.PIN, LinearForm.of(v, 1), pct / 100)));
        return rows;
    }

    private static List<Integer> gpuBatchSizes(Pins pins, int blockCap) {
        if (pins.gpuBatchSize() != null) return List.of(pins.gpuBatchSize());
        List<Integer> out = new ArrayList<>();
        for (int g = 1; g <= blockCap; g = g < 4 ? g + 1 : g * 2) out.add(g);
        return out;
    }

    private Policy toPolicy(Workload w, int gbs, int nb, double[] x) {
        double[] pct = new double[9];
        // Round to 1e-6 percent: below that the digits are solver noise (e.g. 1e-14 on a share that is 0).
        for (int i = 0; i < 9; i++) pct[i] = Math.min(100, Math.max(0, Math.rint(1e8 * x[i]) / 1e6));
        // Keep each pair's sum within 100 despite floating-point noise of the solver.
        for (int k = 0; k < 3; k++) pct[3 * k + 1] = Math.min(pct[3 * k + 1], 100 - pct[3 * k]);
        boolean cacheOffDevice = pct[3] < 100 - 1e-6;
        boolean delegate = cacheOffDevice && (model.mode() == CostModel.Mode.FLEXGEN || w.cpuCacheCompute());
        return new Policy(gbs, nb, pct[0], pct[1], pct[3], pct[4], pct[6], pct[7], delegate,
                w.compressWeight(), w.compressCache());
    }

    /** The LPs of one search, each (gbs, nb) solved at most once (nb_ub's bisection and the scan share them). */
    private final class Memo implements AutoCloseable {
        final GlopSolver.Session session = new GlopSolver.Session();
        final Workload w;
        final Pins pins;
        final Map<Long, Optional<Solution>> done = new HashMap<>();
        int solved;

        Memo(Workload w, Pins pins) {
            this.w = w;
            this.pins = pins;
        }

        Optional<Solution> solve(int gbs, int nb) {
            return done.computeIfAbsent(((long) gbs << 32) | nb, k -> {
                solved += model.fusesDecode(nb) ? 2 : 1;
                return PolicySearch.this.solve(session, w, gbs, nb, pins);
            });
        }

        @Override
        public void close() {
            session.close();
        }
    }
}
