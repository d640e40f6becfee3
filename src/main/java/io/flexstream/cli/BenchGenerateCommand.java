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
import java.util.stream.Collectors;

/**
 * {@code flexstream bench generate}: times generation on a random model of a published OPT shape, with FlexGen's
 * bookkeeping (throughput = batch x gen-len / (prefill + decode)) and its phases. With {@code --pytorch} it also times
 * PyTorch on the same work in the same command ({@link PyTorchBaseline}), interleaving the runs, and prints the ratio.
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

    @Option(names = "--pytorch", paramLabel = "PYTHON", description = "Also time PyTorch on the same workload in "
            + "this run, its runs alternating with the engine's: FlexStream's script run by this Python interpreter, "
            + "which needs torch (e.g. /usr/bin/python3 with Debian's python3-torch and libopenblas0-pthread). "
            + "In-memory fp32 runs of pre-LayerNorm shapes only.")
    String pytorch;

    @Option(names = "--pytorch-linear", split = ",", defaultValue = "standard,tuned", description = "The PyTorch "
            + "variants to time with --pytorch: standard (F.linear, as torch.nn.Linear runs), tuned (weights "
            + "transposed once, x @ w_t) (default: ${DEFAULT-VALUE}).")
    List<PyTorchBaseline.Linear> pytorchLinear;

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
                + (offload.offloading() ? " (with policy flags)" : "")
                + (pytorch != null ? " --pytorch " + pytorch + " --pytorch-linear "
                + pytorchLinear.stream().map(PyTorchBaseline.Linear::argument).collect(Collectors.joining(","))
                : ""));
        System.out.println("machine: " + MachineInfo.describe());
        Placement placement = offload.offloading() ? offload.placement() : null;
        if (pytorch != null && (placement != null || compressed)) {
            throw new CommandLine.ParameterException(new CommandLine(this), "--pytorch times the in-memory fp32 "
                    + "engine only: drop the policy and compression flags, or --pytorch");
        }
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
            List<PyTorchBaseline> baselines = new ArrayList<>();
            List<Measured> results;
            try {
                for (PyTorchBaseline.Linear linear : pytorch == null ? List.<PyTorchBaseline.Linear>of()
                        : pytorchLinear) {
                    baselines.add(PyTorchBaseline.start(pytorch, config, batch, promptLen, genLen,
                            kernels instanceof CpuKernels cpu ? cpu.threads() : 1, seed, linear));
                    System.out.println("baseline: " + baselines.getLast().describe());
                }
                results = measure(variants, baselines, config, weights, kernels, placement);
            } finally {
                baselines.forEach(PyTorchBaseline::close);
            }
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
                System.out.printf("host fp32 fma rate now (%d threads, %d lanes, the engine's micro-kernel on "
                                + "L1-resident operands): %.1f GFLOP/s before the runs, %.1f after; the engine's "
                                + "%.1f GFLOP/s is %.0f%% of their mean, whose floor for this work would be %.1f "
                                + "tokens/s%n", cpu.threads(), FmaPeak.lanes(), peakBefore, 2 * peak - peakBefore,
                        engine, 100 * engine / peak, batch * (double) genLen / (flops / (peak * 1e9)));
            }
            if (pytorch == null && placement == null && !compressed && shape.equals("opt-125m") && layers == 0
                    && batch == 32 && promptLen == 128 && genLen == 32) {
                System.out.printf("vs PyTorch 1.13 reference on this machine class (%.0f tokens/s, PLATFORM.md, "
                        + "not measured in this run): %.2fx%n", PYTORCH_REFERENCE_TOKENS_PER_S,
                        results.getLast().tokensPerS() / PYTORCH_REFERENCE_TOKENS_PER_S);
            }
        }
        return 0;
    }

    /** The host's fma rate on the backend's threads (CPU backend only; NaN otherwise), about a second. */
    private static double hostPeak(Kernels kernels) {
        return kernels instanceof CpuKernels cpu ? FmaPeak.now(cpu.threads()) : Double.NaN;
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

    /** Something timed by the interleaved loop: an engine variant or a PyTorch baseline. */
    private record Contender(String label, Callable<PyTorchBaseline.Run> run) {
    }

    /**
     * Times {@code warmup + repeat} runs of each variant and each PyTorch baseline. With several of them the runs are
     * interleaved (A B, then B A, ...) on engines and processes kept open side by side, so that a change in machine
     * load during the benchmark (other builds on a shared machine) hits every one alike instead of whichever ran
     * last. Prints the baselines' medians and the engine's ratio to each; returns the engine variants' medians.
     */
    private List<Measured> measure(List<Variant> variants, List<PyTorchBaseline> baselines, OptConfig config,
                                   OptWeights weights, Kernels kernels, Placement placement) throws Exception {
        List<Generator> engines = new ArrayList<>();
        try {
            for (Variant v : variants) {
                engines.add(placement == null ? new OptGenerator(weights, null, kernels, shape, v.options())
                        : offloaded(weights, kernels, placement, v.options()));
            }
            List<PreparedPrompt> prompts = prompts(engines.getFirst(), config);
            List<Contender> contenders = new ArrayList<>();
            boolean several = variants.size() + baselines.size() > 1;
            for (int v = 0; v < variants.size(); v++) {
                Generator engine = engines.get(v);
                contenders.add(new Contender(several ? " [FlexStream " + variants.get(v).label() + "]" : "", () -> {
                    PhaseTimes phases = new PhaseTimes();
                    long start = System.nanoTime();
                    engine.generate(prompts, phases);
                    return new PyTorchBaseline.Run((System.nanoTime() - start) / 1e9, phases.prefill, phases.decode);
                }));
            }
            for (PyTorchBaseline b : baselines) {
                contenders.add(new Contender(" [PyTorch " + b.linear() + "]", b::run));
            }
            int n = contenders.size();
            double[][] total = new double[n][repeat];
            double[][] prefill = new double[n][repeat];
            double[][] decode = new double[n][repeat];
            for (int run = -warmup; run < repeat; run++) {
                for (int i = 0; i < n; i++) {
                    int c = Math.floorMod(run, 2) == 0 ? i : n - 1 - i;
                    PyTorchBaseline.Run r = contenders.get(c).run().call();
                    System.out.printf("%s%s: %.3f s (prefill %.3f s, decode %.3f s), %.1f tokens/s%n",
                            run < 0 ? "warm-up" : "run " + (run + 1), contenders.get(c).label(), r.seconds(),
                            r.prefill(), r.decode(), batch * (double) genLen / r.seconds());
                    if (run >= 0) {
                        total[c][run] = r.seconds();
                        prefill[c][run] = r.prefill();
                        decode[c][run] = r.decode();
                    }
                }
            }
            List<Measured> out = new ArrayList<>();
            for (int v = 0; v < variants.size(); v++) {
                if (variants.size() > 1) {
                    System.out.println("== " + variants.get(v).label());
                }
                out.add(summarize(engines.get(v), config, total[v], prefill[v], decode[v]));
            }
            double engineTokensPerS = out.getLast().tokensPerS();
            for (int b = 0; b < baselines.size(); b++) {
                int c = variants.size() + b;
                double tokensPerS = batch * (double) genLen / median(total[c]);
                System.out.printf("PyTorch %s, median of %d: %.3f s; prefill %.3f s, decode %.3f s; %.1f tokens/s; "
                                + "FlexStream %s vs it: %.2fx%n", baselines.get(b).linear(), repeat, median(total[c]),
                        median(prefill[c]), median(decode[c]), tokensPerS, variants.getLast().label(),
                        engineTokensPerS / tokensPerS);
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
