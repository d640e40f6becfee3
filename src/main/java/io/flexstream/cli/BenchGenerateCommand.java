package io.flexstream.cli;

import io.flexstream.engine.EngineOptions;
import io.flexstream.engine.GenerationListener;
import io.flexstream.engine.GenerationRequest;
import io.flexstream.engine.Generator;
import io.flexstream.engine.OffloadedGenerator;
import io.flexstream.engine.OptGenerator;
import io.flexstream.engine.Placement;
import io.flexstream.engine.PreparedPrompt;
import io.flexstream.engine.SamplingParams;
import io.flexstream.kernel.CpuKernels;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.tier.Tiers;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code flexstream bench generate}: times generation on a random model of a published OPT shape, with FlexGen's
 * bookkeeping (throughput = batch x gen-len / (prefill + decode)) and its phases.
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Time generation on a random-weight model of an OPT shape (fp32 compute, greedy, EOS ignored).")
public final class BenchGenerateCommand implements Callable<Integer> {

    /** PyTorch 1.13 (OpenBLAS, 2 threads) on this machine class for opt-125m, batch 32, prompt 128, gen 32. */
    private static final double PYTORCH_REFERENCE_TOKENS_PER_S = 59.0;

    @Option(names = "--shape", defaultValue = "opt-125m", description = "OPT shape (default: ${DEFAULT-VALUE}).")
    String shape;

    @Option(names = "--layers", defaultValue = "0",
            description = "Override the number of layers, 0 = the shape's (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--batch", defaultValue = "32", description = "Sequences (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--prompt-len", defaultValue = "128", description = "Prompt tokens (default: ${DEFAULT-VALUE}).")
    int promptLen;

    @Option(names = "--gen-len", defaultValue = "32", description = "Generated tokens (default: ${DEFAULT-VALUE}).")
    int genLen;

    @Option(names = "--repeat", defaultValue = "3", description = "Timed runs; the median is reported "
            + "(default: ${DEFAULT-VALUE}).")
    int repeat;

    @Option(names = "--warmup", defaultValue = "1", description = "Untimed runs first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--threads", defaultValue = "0", description = "Compute threads, 0 = all cores "
            + "(default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--seed", defaultValue = "1", description = "Weights and prompts seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @CommandLine.Mixin
    OffloadOptions offload = new OffloadOptions();

    @Override
    public Integer call() throws java.io.IOException {
        OptConfig config = OptConfig.shape(shape);
        if (layers > 0) {
            config = config.withNumLayers(layers);
        }
        System.out.println("command: flexstream bench generate --shape " + shape
                + (layers > 0 ? " --layers " + layers : "") + " --batch " + batch + " --prompt-len " + promptLen
                + " --gen-len " + genLen + " --repeat " + repeat + " --warmup " + warmup
                + (threads > 0 ? " --threads " + threads : "") + (offload.offloading() || offload.compressWeight()
                ? " (with policy flags)" : ""));
        System.out.println("machine: " + MachineInfo.describe());
        Arena arena = Arena.ofShared();
        OptWeights weights = OptWeights.random(config, seed, arena);
        CpuKernels kernels = threads > 0 ? new CpuKernels(threads) : new CpuKernels();
        System.out.println("backend: " + kernels.name() + "; model: " + shape + " shape, "
                + config.numLayers() + " layers, random fp32 weights");
        EngineOptions options = new EngineOptions(batch, false, offload.compressWeight());
        Placement placement = offload.offloading() ? offload.placement() : null;
        if (placement != null) {
            System.out.println("policy: " + placement);
        }
        try (Generator engine = placement == null
                ? new OptGenerator(weights, null, kernels, shape, options, arena, kernels)
                : offloaded(weights, kernels, placement, options, arena)) {
            List<PreparedPrompt> prompts = prompts(engine, config);
            double[] total = new double[repeat];
            double[] prefill = new double[repeat];
            double[] decode = new double[repeat];
            double[] cpu = new double[repeat];
            double[] prefillCpu = new double[repeat];
            for (int run = -warmup; run < repeat; run++) {
                Phases phases = new Phases();
                long cpuStart = processCpuNanos();
                long start = System.nanoTime();
                engine.generate(prompts, phases);
                double secs = (System.nanoTime() - start) / 1e9;
                double cpuSecs = (processCpuNanos() - cpuStart) / 1e9;
                double prefillCpuSecs = (phases.prefillCpuNanos - cpuStart) / 1e9;
                String label = run < 0 ? "warm-up" : "run " + (run + 1);
                System.out.printf("%s: %.3f s (prefill %.3f s, decode %.3f s), %.1f tokens/s; process CPU %.3f s "
                                + "(prefill %.3f s, decode %.3f s)%n", label, secs, phases.prefill, phases.decode,
                        batch * (double) genLen / secs, cpuSecs, prefillCpuSecs, cpuSecs - prefillCpuSecs);
                if (run >= 0) {
                    total[run] = secs;
                    prefill[run] = phases.prefill;
                    decode[run] = phases.decode;
                    cpu[run] = cpuSecs;
                    prefillCpu[run] = prefillCpuSecs;
                }
            }
            double secs = median(total);
            double tokensPerS = batch * (double) genLen / secs;
            double flops = flops(config, batch, promptLen, genLen);
            System.out.printf("median of %d: %.3f s; prefill %.3f s (%.0f prompt tokens/s), decode %.3f s "
                            + "(%.1f tokens/s)%n", repeat, secs, median(prefill), batch * (double) promptLen
                            / median(prefill), median(decode),
                    batch * (double) (genLen - 1) / median(decode));
            System.out.printf("throughput: %.1f generated tokens/s (batch x gen-len / total time); "
                    + "%.1f GFLOP/s over %.3f TFLOP of work%n", tokensPerS, flops / secs / 1e9, flops / 1e12);
            int cores = kernels.threads();
            System.out.printf("process CPU time: median %.3f s (prefill %.3f s); on %d otherwise idle cores that is "
                            + "at best %.1f tokens/s. Compare wall-clock numbers only on a quiet machine: when the "
                            + "wall time is much more than CPU time / cores, other processes had the cores.%n",
                    median(cpu), median(prefillCpu), cores, batch * (double) genLen * cores / median(cpu));
            if (engine instanceof OffloadedGenerator o) {
                System.out.println("placement realised:\n" + o.placementReport());
            }
            if (placement == null && shape.equals("opt-125m") && layers == 0 && batch == 32 && promptLen == 128 && genLen == 32) {
                System.out.printf("vs PyTorch 1.13 reference on this machine class (%.0f tokens/s, PLATFORM.md, "
                        + "not measured in this run): %.2fx%n", PYTORCH_REFERENCE_TOKENS_PER_S,
                        tokensPerS / PYTORCH_REFERENCE_TOKENS_PER_S);
            }
        }
        return 0;
    }

    private OffloadedGenerator offloaded(OptWeights weights, CpuKernels kernels, Placement placement,
                                         EngineOptions options, Arena arena) {
        Tiers tiers = offload.tiers();
        return new OffloadedGenerator(weights, null, kernels, placement, tiers, options, shape, null, tiers, arena,
                kernels);
    }

    private List<PreparedPrompt> prompts(Generator engine, OptConfig config) {
        SplittableRandom random = new SplittableRandom(seed);
        List<PreparedPrompt> prompts = new ArrayList<>(batch);
        for (int i = 0; i < batch; i++) {
            int[] ids = new int[promptLen];
            for (int t = 0; t < promptLen; t++) {
                ids[t] = 4 + random.nextInt(config.vocabSize() - 4); // skip OPT's special tokens 0..3
            }
            try {
                prompts.add(engine.prepare(GenerationRequest.tokens("bench-" + i, ids, SamplingParams.greedy(genLen))));
            } catch (Exception e) {
                throw new IllegalArgumentException("benchmark prompt rejected: " + e.getMessage(), e);
            }
        }
        return prompts;
    }

    /**
     * Matrix-product work of the run: 2 flops per weight per token through the layers, the head only at sampled
     * positions, plus attention's two products (scores and weighted values) over the visible context.
     */
    static double flops(OptConfig c, int batch, int promptLen, int genLen) {
        double h = c.hiddenSize();
        double perTokenLayers = c.numLayers() * 2.0 * (4 * h * h + 2 * h * c.ffnDim());
        double head = 2.0 * c.wordEmbedProjDim() * c.vocabSize();
        double prefill = batch * (promptLen * perTokenLayers + head
                + c.numLayers() * 2.0 * 2 * h * promptLen * (promptLen + 1) / 2.0);
        double decode = 0;
        for (int step = 1; step < genLen; step++) {
            decode += batch * (perTokenLayers + head + c.numLayers() * 2.0 * 2 * h * (promptLen + step));
        }
        return prefill + decode;
    }

    /** CPU time of the whole process (every thread: kernels, JIT compiler, GC) in nanoseconds. */
    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /** Collects the phase times the engine reports. */
    private static final class Phases implements GenerationListener {
        double prefill;
        double decode;
        long prefillCpuNanos;

        @Override
        public void prefillDone(int sequences, int promptTokens, long nanos) {
            prefill += nanos / 1e9;
            prefillCpuNanos = processCpuNanos();
        }

        @Override
        public void decodeStep(int step, int maxSteps, int active, long nanos) {
            decode += nanos / 1e9;
        }
    }
}
