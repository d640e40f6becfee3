package io.flexstream.cli;

import io.flexstream.engine.EngineOptions;
import io.flexstream.engine.GenerationRequest;
import io.flexstream.engine.Generator;
import io.flexstream.engine.OffloadedGenerator;
import io.flexstream.engine.OptGenerator;
import io.flexstream.engine.Placement;
import io.flexstream.engine.PreparedPrompt;
import io.flexstream.engine.SamplingParams;
import io.flexstream.kernel.CpuKernels;
import io.flexstream.kernel.FmaPeak;
import io.flexstream.kernel.Kernels;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.tier.Sizes;
import io.flexstream.tier.TierKind;
import io.flexstream.tier.Tiers;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
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

    @CommandLine.Mixin
    BackendOptions backend = new BackendOptions();

    @Override
    public Integer call() throws Exception {
        OptConfig config = OptConfig.shape(shape);
        if (layers > 0) {
            config = config.withNumLayers(layers);
        }
        EngineOptions options = offload.engineOptions(new EngineOptions(batch, false));
        boolean compressed = options.compressWeight() || options.compressCache();
        System.out.println("command: flexstream bench generate --shape " + shape
                + (layers > 0 ? " --layers " + layers : "") + " --batch " + batch + " --prompt-len " + promptLen
                + " --gen-len " + genLen + " --repeat " + repeat + " --warmup " + warmup
                + (threads > 0 ? " --threads " + threads : "")
                + (options.compressWeight() ? " --compress-weight" : "")
                + (options.compressCache() ? " --compress-cache" : "")
                + (offload.offloading() ? " (with policy flags)" : ""));
        System.out.println("machine: " + MachineInfo.describe());
        Placement placement = offload.offloading() ? offload.placement() : null;
        Kernels kernels = backend.kernels(threads, offload.deviceMem, placement != null, System.out::println);
        try (Arena arena = Arena.ofShared(); AutoCloseable closeKernels = closer(kernels)) {
            OptWeights weights = OptWeights.random(config, seed, arena);
            System.out.println("backend: " + kernels.name() + "; model: " + shape + " shape, "
                    + config.numLayers() + " layers, random fp32 weights");
            if (placement != null) {
                System.out.println("policy: " + placement);
            }
            double peakBefore = hostPeak(kernels);
            List<Variant> variants = new ArrayList<>();
            if (compressed) {
                variants.add(new Variant("uncompressed (fp32)", options.withCompressWeight(false)
                        .withCompressCache(false)));
            }
            variants.add(new Variant(label(options), options));
            List<Measured> results = measure(variants, config, weights, kernels, placement);
            if (compressed) {
                compare(variants, results, placement == null);
            }
            if (kernels instanceof io.flexstream.kernel.cuda.CudaKernels cuda) {
                System.out.println(cuda.statistics());
            }
            if (kernels instanceof CpuKernels cpu) {
                double peak = (peakBefore + hostPeak(kernels)) / 2;
                double flops = flops(config, batch, promptLen, genLen);
                double engine = flops / results.getLast().seconds() / 1e9;
                System.out.printf("host fp32 fma rate now (%d threads, %d lanes, register-resident chains): "
                                + "%.1f GFLOP/s before the runs, %.1f after; the engine's %.1f GFLOP/s is %.0f%% of "
                                + "their mean, whose floor for this work would be %.1f tokens/s%n", cpu.threads(),
                        FmaPeak.lanes(), peakBefore, 2 * peak - peakBefore, engine,
                        100 * engine / peak, batch * (double) genLen / (flops / (peak * 1e9)));
            }
            if (placement == null && !compressed && shape.equals("opt-125m") && layers == 0 && batch == 32
                    && promptLen == 128 && genLen == 32) {
                System.out.printf("vs PyTorch 1.13 reference on this machine class (%.0f tokens/s, PLATFORM.md, "
                        + "not measured in this run): %.2fx%n", PYTORCH_REFERENCE_TOKENS_PER_S,
                        results.getLast().tokensPerS() / PYTORCH_REFERENCE_TOKENS_PER_S);
            }
        }
        return 0;
    }

    /** The host's fma rate on the backend's threads (CPU backend only; NaN otherwise), about a second. */
    private static double hostPeak(Kernels kernels) {
        return kernels instanceof CpuKernels cpu ? FmaPeak.gflops(cpu.threads(), 20_000_000, 5) : Double.NaN;
    }

    private static String label(EngineOptions o) {
        if (o.compressWeight() && o.compressCache()) {
            return "4-bit weights + cache";
        }
        return o.compressWeight() ? "4-bit weights" : o.compressCache() ? "4-bit cache" : "fp32";
    }

    /** A configuration to time. */
    private record Variant(String label, EngineOptions options) {
    }

    /**
     * Medians of one variant, and the bytes it held: {weights, KV cache} x {device, host, disk} (the in-memory engine
     * counts everything as host memory).
     */
    private record Measured(double seconds, double prefill, double decode, double tokensPerS, long[][] bytes) {
    }

    /**
     * Times {@code warmup + repeat} runs of each variant. With several variants the runs are interleaved (A B, then
     * B A, ...) on engines kept open side by side, so that a change in machine load during the benchmark (other
     * builds on a shared machine) hits every variant alike instead of whichever ran last.
     */
    private List<Measured> measure(List<Variant> variants, OptConfig config, OptWeights weights, Kernels kernels,
                                   Placement placement) {
        List<Generator> engines = new ArrayList<>();
        try {
            for (Variant v : variants) {
                engines.add(placement == null ? new OptGenerator(weights, null, kernels, shape, v.options())
                        : offloaded(weights, kernels, placement, v.options()));
            }
            List<PreparedPrompt> prompts = prompts(engines.getFirst(), config);
            int n = variants.size();
            double[][] total = new double[n][repeat];
            double[][] prefill = new double[n][repeat];
            double[][] decode = new double[n][repeat];
            for (int run = -warmup; run < repeat; run++) {
                for (int i = 0; i < n; i++) {
                    int v = Math.floorMod(run, 2) == 0 ? i : n - 1 - i;
                    PhaseTimes phases = new PhaseTimes();
                    long start = System.nanoTime();
                    engines.get(v).generate(prompts, phases);
                    double secs = (System.nanoTime() - start) / 1e9;
                    String label = (run < 0 ? "warm-up" : "run " + (run + 1))
                            + (n > 1 ? " [" + variants.get(v).label() + "]" : "");
                    System.out.printf("%s: %.3f s (prefill %.3f s, decode %.3f s), %.1f tokens/s%n", label, secs,
                            phases.prefill, phases.decode, batch * (double) genLen / secs);
                    if (run >= 0) {
                        total[v][run] = secs;
                        prefill[v][run] = phases.prefill;
                        decode[v][run] = phases.decode;
                    }
                }
            }
            List<Measured> out = new ArrayList<>();
            for (int v = 0; v < n; v++) {
                if (n > 1) {
                    System.out.println("== " + variants.get(v).label());
                }
                out.add(summarize(engines.get(v), config, total[v], prefill[v], decode[v]));
            }
            return out;
        } finally {
            for (Generator g : engines) {
                g.close();
            }
        }
    }

    /** Prints one variant's medians and placement, and collects its bytes per tier. */
    private Measured summarize(Generator engine, OptConfig config, double[] total, double[] prefill,
                               double[] decode) {
        double secs = median(total);
        double tokensPerS = batch * (double) genLen / secs;
        double flops = flops(config, batch, promptLen, genLen);
        System.out.printf("median of %d: %.3f s; prefill %.3f s (%.0f prompt tokens/s), decode %.3f s "
                        + "(%.1f tokens/s)%n", repeat, secs, median(prefill), batch * (double) promptLen
                        / median(prefill), median(decode),
                batch * (double) (genLen - 1) / median(decode));
        System.out.printf("throughput: %.1f generated tokens/s (batch x gen-len / total time); "
                + "%.1f GFLOP/s over %.3f TFLOP of work%n", tokensPerS, flops / secs / 1e9, flops / 1e12);
        long[][] bytes = new long[2][3];
        if (engine instanceof OffloadedGenerator o) {
            System.out.println("placement realised:\n" + o.placementReport());
            for (TierKind kind : TierKind.values()) {
                bytes[0][kind.ordinal()] = o.weightBytesOn(kind);
                bytes[1][kind.ordinal()] = o.cacheBytesOn(kind);
            }
        } else if (engine instanceof OptGenerator g) {
            bytes[0][TierKind.HOST.ordinal()] = g.weightBytes();
            bytes[1][TierKind.HOST.ordinal()] = g.lastBatchCacheBytes();
        }
        return new Measured(secs, median(prefill), median(decode), tokensPerS, bytes);
    }

    /** The compressed run beside the uncompressed one: tokens/s and bytes per tier, with ratios. */
    private void compare(List<Variant> variants, List<Measured> results, boolean inMemory) {
        Measured base = results.getFirst();
        System.out.println("comparison (medians of interleaved runs, same prompts, placement and process; bytes "
                + "per tier device / host / disk" + (inMemory ? "; the in-memory engine holds everything in host memory"
                : "") + "):");
        System.out.printf("  %-22s %10s %9s %10s %9s  %-36s %-36s%n", "variant", "tokens/s", "vs base",
                "decode s", "vs base", "weights", "KV cache (last block)");
        for (int i = 0; i < results.size(); i++) {
            Measured m = results.get(i);
            System.out.printf("  %-22s %10.1f %8.2fx %10.3f %8.2fx  %-36s %-36s%n", variants.get(i).label(),
                    m.tokensPerS(), m.tokensPerS() / base.tokensPerS(), m.decode(), base.decode() / m.decode(),
                    tiers(m.bytes()[0]), tiers(m.bytes()[1]));
        }
        Measured last = results.getLast();
        System.out.printf("  bytes vs uncompressed: weights %.3fx, KV cache %.3fx (of fp32; x2 for the ratio to "
                + "fp16)%n", sum(last.bytes()[0]) / (double) sum(base.bytes()[0]),
                sum(last.bytes()[1]) / (double) sum(base.bytes()[1]));
    }

    private static String tiers(long[] b) {
        return Sizes.format(b[0]) + " / " + Sizes.format(b[1]) + " / " + Sizes.format(b[2]);
    }

    private static long sum(long[] b) {
        return b[0] + b[1] + b[2];
    }

    private OffloadedGenerator offloaded(OptWeights weights, Kernels kernels, Placement placement,
                                         EngineOptions options) {
        Tiers tiers = offload.tiers();
        return new OffloadedGenerator(weights, null, kernels, placement, tiers, options, shape, null, tiers);
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

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private static AutoCloseable closer(Kernels kernels) {
        return kernels instanceof AutoCloseable c ? c : () -> { };
    }
}
