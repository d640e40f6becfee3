package io.flexstream.cli;

import io.flexstream.engine.EngineOptions;
import io.flexstream.engine.GenerationRequest;
import io.flexstream.engine.OffloadedGenerator;
import io.flexstream.engine.Placement;
import io.flexstream.engine.PreparedPrompt;
import io.flexstream.engine.SamplingParams;
import io.flexstream.engine.ScheduleKind;
import io.flexstream.kernel.CpuKernels;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.policy.CostModel;
import io.flexstream.policy.HardwareProfile;
import io.flexstream.policy.LpVariable;
import io.flexstream.policy.ModelShape;
import io.flexstream.policy.Pins;
import io.flexstream.policy.Policy;
import io.flexstream.policy.Prediction;
import io.flexstream.policy.PolicySearch;
import io.flexstream.policy.Solution;
import io.flexstream.policy.Workload;
import io.flexstream.tier.TierShares;
import io.flexstream.tier.Tiers;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code flexstream bench policy}: does the policy search choose well on this machine? For three workloads (everything
 * in memory; weights on disk; KV cache on disk) it searches the policy with this machine's profile, runs the chosen
 * policy on the offloading engine and compares the measured tokens/s with the prediction (target: within 25%); then it
 * runs a grid of hand-set (gbs, nb) with the same placement rule and compares the chosen policy's measured throughput
 * with the grid's best (target: at least 90%). Every number comes from the same run, after a JIT warm-up.
 *
 * <p>The search decides with a profile of the machine taken before the runs. Because a shared VM's disk and cores
 * change speed within minutes, the machine is profiled again after every pass, and the prediction is also given for
 * the hardware the runs met (the median of those profiles, with each run's own disk read rate): the first error is what
 * a consumer meets, the second is the cost model's own.
 *
 * <p>The workloads pin the tensor class they are about (weights or cache 100% on disk) and leave the rest of the
 * placement and the block shape to the search, capped at {@code --max-block} sequences so a run stays short.
 */
@Command(name = "policy", mixinStandardHelpOptions = true,
        description = "Validate the policy search: predicted vs measured tokens/s for three workloads, and the chosen "
                + "policy vs a grid of hand-set ones, in one run.")
public final class BenchPolicyCommand implements Callable<Integer> {

    @Option(names = "--shape", defaultValue = "opt-125m", description = "model shape, random weights "
            + "(default: ${DEFAULT-VALUE})")
    String shape;

    @Option(names = "--layers", defaultValue = "12", description = "decoder layers (default: ${DEFAULT-VALUE})")
    int layers;

    @Option(names = "--prompt-len", defaultValue = "32", description = "prompt tokens (default: ${DEFAULT-VALUE})")
    int promptLen;

    @Option(names = "--gen-len", defaultValue = "16", description = "new tokens (default: ${DEFAULT-VALUE})")
    int genLen;

    @Option(names = "--max-block", defaultValue = "64", description = "largest block gbs x nb searched and run "
            + "(default: ${DEFAULT-VALUE})")
    int maxBlock;

    @Option(names = "--hardware", paramLabel = "NAME|FILE", description = "hardware profile (default: measure this "
            + "machine with `flexstream profile` before the runs and after every pass, about 20 s each)")
    String hardware;

    @Option(names = "--offload-dir", defaultValue = "flexstream-offload",
            description = "disk tier directory, a real disk (default: ${DEFAULT-VALUE})")
    Path offloadDir;

    @Option(names = "--passes", defaultValue = "3", description = "times every policy is run, in interleaved "
            + "passes; medians are compared (default: ${DEFAULT-VALUE})")
    int passes;

    @Option(names = "--workloads", split = ",", defaultValue = "memory,weights-on-disk,cache-on-disk",
            description = "which workloads to run (default: ${DEFAULT-VALUE})")
    List<String> workloads;

    /** One validation workload: a name and the placement pins that define it. */
    private record Scenario(String name, Pins pins) {
    }

    /**
     * A measured run: the policy, its prediction from the profile taken before the runs and what the engine did;
     * {@code diskRate} is the read bandwidth the disk tier delivered during the run (0 when it read nothing large).
     */
    private record Run(Policy policy, double predicted, double measured, double seconds, double diskRate) {
    }

    /** One policy to measure in every pass: a workload's chosen policy or one of its grid, and its runs so far. */
    private record Planned(Scenario scenario, Policy policy, boolean chosen, List<Run> runs) {
    }

    /**
     * The median of runs of one policy, field by field (tokens/s, seconds, the disk rate); the prediction from the
     * profile is the same in every run.
     */
    private static Run median(List<Run> runs) {
        return new Run(runs.getFirst().policy(), runs.getFirst().predicted(), median(runs, Run::measured),
                median(runs, Run::seconds), median(runs, Run::diskRate));
    }

    private static double median(List<Run> runs, java.util.function.ToDoubleFunction<Run> field) {
        double[] v = runs.stream().mapToDouble(field).sorted().toArray();
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

    @Override
    public Integer call() throws Exception {
        System.out.printf("command: flexstream bench policy --shape %s --layers %d --prompt-len %d --gen-len %d "
                        + "--max-block %d --passes %d%s --offload-dir %s%n", shape, layers, promptLen, genLen, maxBlock,
                passes,
                hardware == null ? "" : " --hardware " + hardware, offloadDir);
        if (passes < 1) {
            throw new CommandLine.ParameterException(new CommandLine(this), "--passes must be at least 1, got "
                    + passes);
        }
        System.out.println("machine: " + MachineInfo.describe());
        HardwareProfile profile = hardware == null ? measureProfile() : HardwareProfile.load(hardware);
        // Profiles of this machine taken before the runs and after every pass (only when measured here).
        List<HardwareProfile> window = new ArrayList<>(List.of(profile));
        System.out.println("profile: " + profile.name() + " — " + profile.description());
        OptConfig config = OptConfig.shape(shape).withNumLayers(layers);
        ModelShape model = ModelShape.of(shape + "x" + layers, config);
        PolicySearch search = searchFor(profile);
        Workload workload = new Workload(model, promptLen, genLen, false, false, false);
        Pins cap = Pins.NONE.withMaxBlockSize(maxBlock);
        List<Scenario> all = List.of(
                new Scenario("memory", cap),
                new Scenario("weights-on-disk", cap.withShare(LpVariable.WG, 0).withShare(LpVariable.WC, 0)),
                new Scenario("cache-on-disk", cap.withShare(LpVariable.CG, 0).withShare(LpVariable.CC, 0)));
        List<String> report = new ArrayList<>();
        boolean allMet = true;
        boolean allMetOverRuns = true;
        try (Arena arena = Arena.ofShared(); CpuKernels kernels = new CpuKernels()) {
            OptWeights weights = OptWeights.random(config, 1, arena);
            // Warm-up at both ends of the block sizes: the chosen policy is usually the largest block and runs first,
            // and after a small warm-up alone its prefill measured 23% slower than the same prefill later in the run.
            System.out.println("warm-up runs (not counted)");
            measure(weights, kernels, profile, Policy.of(4, 1, "100 0 100 0 100 0", false), search, workload);
            measure(weights, kernels, profile, Policy.of(maxBlock, 1, "100 0 100 0 100 0", false), search, workload);
            // Every workload's chosen policy and grid, measured in --passes interleaved passes (the order reversed
            // in every other pass), so that a slow minute of the shared host falls on several policies rather than
            // deciding one, and each policy is judged by the median of its runs.
            List<Planned> plan = new ArrayList<>();
            for (Scenario scenario : all) {
                if (!workloads.contains(scenario.name())) {
                    continue;
                }
                Solution chosen = search.search(workload, scenario.pins()).best();
                System.out.printf("%s: search chose %s, predicted %.1f tokens/s%n", scenario.name(),
                        describe(chosen.policy()), chosen.prediction().throughput());
                plan.add(new Planned(scenario, chosen.policy(), true, new ArrayList<>()));
                for (int[] shapeOfBlock : gridShapes()) {
                    Policy hand = withShape(chosen.policy(), shapeOfBlock[0], shapeOfBlock[1]);
                    if (hand.gpuBatchSize() != chosen.policy().gpuBatchSize()
                            || hand.numGpuBatches() != chosen.policy().numGpuBatches()) {
                        plan.add(new Planned(scenario, hand, false, new ArrayList<>()));
                    }
                }
            }
            for (int pass = 0; pass < passes; pass++) {
                System.out.printf("%n== pass %d of %d%n", pass + 1, passes);
                for (int i = 0; i < plan.size(); i++) {
                    Planned entry = plan.get(pass % 2 == 0 ? i : plan.size() - 1 - i);
                    System.out.print("  " + entry.scenario().name() + (entry.chosen() ? " (chosen)" : "") + ":");
                    entry.runs().add(measure(weights, kernels, profile, entry.policy(), search, workload));
                }
                if (hardware == null) {
                    System.out.printf("  the machine again after pass %d:%n", pass + 1);
                    window.add(measureProfile());
                }
            }
            HardwareProfile overWindow = HardwareProfile.median("median of " + window.size() + " profiles",
                    "every rate the median of the profiles taken before the runs and after each pass", window);
            System.out.printf(Locale.ROOT, "%nthe machine over the runs (%d profiles: before, then after each pass): "
                            + "disk re-read while computing %s GB/s, linear %s GFLOP/s (prefill), %s GFLOP/s "
                            + "(decode), small reads %s us (one at a time), %s us (256 at once)%n", window.size(),
                    series(window, p -> p.diskToHost() / 1e9, "%.2f"),
                    series(window, p -> p.matmulFlopsPrefill() / 1e9, "%.0f"),
                    series(window, p -> p.matmulFlopsDecode() / 1e9, "%.0f"),
                    series(window, p -> p.diskReadRequestSeconds() * 1e6, "%.0f"),
                    series(window, p -> p.diskBatchReadRequestSeconds() * 1e6, "%.1f"));
            for (Scenario scenario : all) {
                List<Planned> mine = plan.stream().filter(e -> e.scenario() == scenario).toList();
                if (mine.isEmpty()) {
                    continue;
                }
                Run picked = median(mine.getFirst().runs());
                Run best = mine.stream().map(e -> median(e.runs()))
                        .max(java.util.Comparator.comparingDouble(Run::measured)).orElseThrow();
                double error = picked.predicted() / picked.measured() - 1;
                double overRuns = predictedInRuns(overWindow, workload, mine.getFirst().runs());
                double errorOverRuns = overRuns / picked.measured() - 1;
                double share = picked.measured() / best.measured();
                allMet &= Math.abs(error) <= 0.25 && share >= 0.90;
                allMetOverRuns &= Math.abs(errorOverRuns) <= 0.25 && share >= 0.90;
                String diskRate = picked.diskRate() == 0 ? "-" : String.format(Locale.ROOT, "%.2f GB/s",
                        picked.diskRate() / 1e9);
                report.add(String.format(Locale.ROOT,
                        "| %s | %s | %.1f | %.1f | %+.0f%% | %.1f | %+.0f%% | %s | %s: %.1f | %.0f%% |",
                        scenario.name(), describe(picked.policy()), picked.predicted(), picked.measured(),
                        100 * error, overRuns, 100 * errorOverRuns, diskRate, describe(best.policy()),
                        best.measured(), 100 * share));
            }
        }
        System.out.printf("%nmedians of %d passes per policy%n", passes);
        System.out.printf("| workload | chosen policy | predicted tokens/s (profile before the runs) "
                + "| measured tokens/s | error | predicted (the runs' hardware) | error "
                + "| disk reads in the runs | best hand-set (measured tokens/s) | chosen / best |%n"
                + "|---|---|---|---|---|---|---|---|---|---|%n");
        report.forEach(System.out::println);
        System.out.println("targets: |prediction error| <= 25%, chosen / best >= 90% — with the profile before the "
                + "runs: " + (allMet ? "all met" : "NOT all met") + (hardware != null ? ""
                : "; with the runs' hardware: " + (allMetOverRuns ? "all met" : "NOT all met")));
        System.out.println("The search chose with the profile taken before the runs, as a consumer does. On a shared "
                + "VM the disk and the cores change speed between that profile and the runs; the second prediction "
                + "is made with the hardware the runs met, so it measures the cost model's error apart from that "
                + "drift: the median of the profiles taken before the runs and after each pass, with each run's own "
                + "disk read rate (the bandwidth the disk tier delivered to reads of 1 MiB or more while they were in "
                + "progress; the column \"disk reads in the runs\" gives their median), the median over the runs.");
        return 0;
    }

    /** The search this benchmark checks: FlexStream mode, calibrated for the CPU backend, on {@code profile}. */
    private static PolicySearch searchFor(HardwareProfile profile) {
        return new PolicySearch(new CostModel(profile, CostModel.Mode.FLEXSTREAM, CostModel.DEFAULT_ALPHA,
                CostModel.Calibration.FP32));
    }

    /** The hand-set block shapes: small, medium and large GPU batches, one or several per block. */
    private List<int[]> gridShapes() {
        List<int[]> shapes = new ArrayList<>();
        for (int gbs : new int[] {2, 8, 32}) {
            for (int nb : new int[] {1, 4}) {
                if (gbs * nb <= maxBlock) {
                    shapes.add(new int[] {gbs, nb});
                }
            }
        }
        return shapes;
    }

    private static Policy withShape(Policy p, int gbs, int nb) {
        return new Policy(gbs, nb, p.weightGpu(), p.weightCpu(), p.cacheGpu(), p.cacheCpu(), p.activationGpu(),
                p.activationCpu(), p.cpuCacheCompute(), p.compressWeight(), p.compressCache());
    }

    private static String describe(Policy p) {
        return String.format(Locale.ROOT, "%dx%d [%s]", p.gpuBatchSize(), p.numGpuBatches(), p.formatPercent());
    }

    /**
     * Runs two blocks of the policy's size on one offloading engine and times the second; tokens/s = new tokens /
     * wall time. A consumer runs block after block on one engine, and the first block on a new engine pays for
     * memory the next ones reuse (MemoryTier recycling; 0.23 s of a 2.4 s block of 64 in memory), a cost the model
     * does not charge because a running consumer does not pay it.
     */
    private Run measure(OptWeights weights, CpuKernels kernels, HardwareProfile profile, Policy policy,
                        PolicySearch search, Workload workload) {
        Prediction prediction = search.evaluate(workload, policy);
        double predicted = prediction.throughput();
        int layerCount = workload.model().layers();
        Placement placement = new Placement(policy.gpuBatchSize(), policy.numGpuBatches(),
                shares(policy.weightGpu(), policy.weightCpu()), shares(policy.cacheGpu(), policy.cacheCpu()),
                shares(policy.activationGpu(), policy.activationCpu()), policy.cpuCacheCompute(),
                ScheduleKind.ZIGZAG);
        // The tiers get the capacities the search assumed, so the placement is held to the same budgets.
        Tiers tiers = new Tiers(profile.deviceMemoryBytes(), profile.hostMemoryBytes(), offloadDir,
                profile.diskBytes(), true);
        try (OffloadedGenerator engine = new OffloadedGenerator(weights, null, kernels, placement, tiers,
                new EngineOptions(placement.blockSize(), false), shape, null, tiers)) {
            List<PreparedPrompt> prompts = new ArrayList<>();
            SplittableRandom random = new SplittableRandom(7);
            for (int i = 0; i < placement.blockSize(); i++) {
                int[] ids = new int[promptLen];
                for (int t = 0; t < promptLen; t++) {
                    ids[t] = 4 + random.nextInt(weights.config().vocabSize() - 4);
                }
                prompts.add(engine.prepare(GenerationRequest.tokens("p" + i, ids, SamplingParams.greedy(genLen))));
            }
            engine.generate(prompts, new PhaseTimes());
            long bytesBefore = tiers.disk().largeReadBytes();
            double readSecondsBefore = tiers.disk().largeReadSeconds();
            double busyBefore = tiers.disk().busySeconds();
            PhaseTimes phases = new PhaseTimes();
            long start = System.nanoTime();
            engine.generate(prompts, phases);
            double seconds = (System.nanoTime() - start) / 1e9;
            long bytesRead = tiers.disk().largeReadBytes() - bytesBefore;
            double diskRate = bytesRead == 0 ? 0 : bytesRead / (tiers.disk().largeReadSeconds() - readSecondsBefore);
            double busy = tiers.disk().busySeconds() - busyBefore;
            double measured = (double) placement.blockSize() * genLen / seconds;
            System.out.printf(Locale.ROOT, "  %-34s predicted %7.1f tokens/s, measured %7.1f tokens/s (%.2f s: "
                            + "prefill %.2f s, predicted %.2f; decode %.2f s, predicted %.2f); peak %s; disk busy "
                            + "%.2f s%s%n", describe(policy), predicted, measured, seconds, phases.prefill,
                    layerCount * prediction.prefillSecondsPerLayer(), phases.decode,
                    layerCount * (genLen - 1) * prediction.decodeSecondsPerLayer(), tiers.peakReport(),
                    busy, diskRate == 0 ? "" : String.format(Locale.ROOT,
                            ", large reads at %.2f GB/s", diskRate / 1e9));
            return new Run(policy, predicted, measured, seconds, diskRate);
        } catch (Exception e) {
            throw new IllegalStateException(describe(policy) + " failed: " + e.getMessage(), e);
        }
    }

    /**
     * The prediction for the hardware the runs of one policy met: the profile over the runs with each run's disk read
     * rate in place of its own (where the run read from disk), the median over the runs.
     */
    private static double predictedInRuns(HardwareProfile overRuns, Workload workload, List<Run> runs) {
        return median(runs, r -> searchFor(r.diskRate() > 0 ? overRuns.withDiskToHost(r.diskRate()) : overRuns)
                .evaluate(workload, r.policy()).throughput());
    }

    /** One rate of every profile, in the order taken. */
    private static String series(List<HardwareProfile> profiles, java.util.function.ToDoubleFunction<HardwareProfile>
            rate, String format) {
        return String.join(" / ", profiles.stream().map(p -> String.format(Locale.ROOT, format,
                rate.applyAsDouble(p))).toList());
    }

    private static TierShares shares(double gpuPercent, double cpuPercent) {
        return new TierShares(Math.min(1, gpuPercent / 100), Math.min(1 - Math.min(1, gpuPercent / 100),
                cpuPercent / 100));
    }

    private HardwareProfile measureProfile() throws Exception {
        Path file = Files.createTempFile("flexstream-profile-", ".json");
        try {
            System.out.println("measuring this machine (flexstream profile --hidden " + OptConfig.shape(shape)
                    .hiddenSize() + ")");
            int code = new CommandLine(new ProfileCommand()).execute("--output", file.toString(), "--offload-dir",
                    offloadDir.toString(), "--hidden", Integer.toString(OptConfig.shape(shape).hiddenSize()),
                    "--name", "measured-now");
            if (code != 0) {
                throw new IllegalStateException("flexstream profile failed (exit " + code + ")");
            }
            return HardwareProfile.read(file);
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
