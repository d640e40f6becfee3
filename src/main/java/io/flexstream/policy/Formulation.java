package io.flexstream.policy;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The cost model for one (workload, gbs, nb): the LP rows, the objective (seconds per sequence of the block, to be
 * minimised) and the named time terms (seconds per layer) for reports.
 *
 * @param constraints  time (epigraph), memory and placement rows; pins are added by the search
 * @param objective    {@code (l Tpre + l (n - 1) Tgen) / (gbs nb)}, seconds per sequence
 * @param prefillTerms the prefill terms by name, seconds per layer for the whole block
 * @param decodeTerms  the decode terms by name, seconds per layer per token for the whole block
 */
public record Formulation(Workload workload, int gpuBatchSize, int numGpuBatches, List<LpConstraint> constraints,
                          LinearForm objective, Map<String, LinearForm> prefillTerms, Map<String, LinearForm> decodeTerms) {

    public int blockSize() {
        return gpuBatchSize * numGpuBatches;
    }

    /** Tokens per second the objective value stands for: n / (seconds per sequence). */
    public double throughputOf(double objectiveValue) {
        return workload.genLen() / objectiveValue;
    }

    /** The shares of {@code policy} as LP fractions (times left 0). */
    public static double[] fractions(Policy p) {
        double[] x = new double[LpVariable.COUNT];
        double[] pct = {p.weightGpu(), p.weightCpu(), p.weightDisk(), p.cacheGpu(), p.cacheCpu(), p.cacheDisk(),
                p.activationGpu(), p.activationCpu(), p.activationDisk()};
        for (int i = 0; i < pct.length; i++) x[i] = pct[i] / 100;
        return x;
    }

    /** Evaluates a fixed policy (its gbs and nb must be this formulation's): times are the max of their rows. */
    public Prediction evaluate(Policy p) {
        if (p.gpuBatchSize() != gpuBatchSize || p.numGpuBatches() != numGpuBatches) {
            throw new IllegalArgumentException("policy " + p.gpuBatchSize() + "x" + p.numGpuBatches()
                    + " evaluated with the formulation of " + gpuBatchSize + "x" + numGpuBatches);
        }
        return evaluate(fractions(p));
    }

    /** Evaluates the shares in {@code x} (fractions; T_PRE and T_GEN are ignored and recomputed). */
    public Prediction evaluate(double[] x) {
        double[] shares = x.clone();
        shares[LpVariable.T_PRE.ordinal()] = 0;
        shares[LpVariable.T_GEN.ordinal()] = 0;
        double tPre = 0, tGen = 0;
        Map<String, Double> memory = new LinkedHashMap<>();
        for (LpConstraint c : constraints) {
            if (c.kind() == LpConstraint.Kind.TIME) {
                // Rows read T - group >= 0, so the group's value is -(row at T = 0).
                double group = -c.form().evaluate(shares);
                if (c.form().coefficient(LpVariable.T_PRE) > 0) tPre = Math.max(tPre, group);
                else tGen = Math.max(tGen, group);
            } else if (c.kind() == LpConstraint.Kind.MEMORY) {
                memory.put(c.name(), c.form().evaluate(shares));
            }
        }
        int l = workload.model().layers();
        double total = l * tPre + l * (double) (workload.genLen() - 1) * tGen;
        double throughput = (double) blockSize() * workload.genLen() / total;
        double gpu = Math.max(memory.getOrDefault("GPU memory in prefill", 0.0), memory.getOrDefault("GPU memory in decode", 0.0));
        double cpu = Math.max(memory.getOrDefault("CPU memory in prefill", 0.0), memory.getOrDefault("CPU memory in decode", 0.0));
        return new Prediction(tPre, tGen, total, throughput, gpu, cpu, memory.getOrDefault("disk", 0.0), memory);
    }

    /** The memory and placement rows {@code x} violates (time rows are satisfied by construction in evaluate). */
    public List<LpConstraint> violated(double[] x, double relativeTolerance) {
        return constraints.stream().filter(c -> !c.holds(x, relativeTolerance)).toList();
    }
}
