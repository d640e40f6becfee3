package io.flexstream.cli;

import io.flexstream.engine.EngineOptions;
import io.flexstream.engine.GenerationListener;
import io.flexstream.engine.GenerationRequest;
import io.flexstream.engine.OffloadedGenerator;
import io.flexstream.engine.Placement;
import io.flexstream.engine.PreparedPrompt;
import io.flexstream.engine.SamplingParams;
import io.flexstream.engine.ScheduleKind;
import io.flexstream.engine.WeightFormat;
import io.flexstream.kernel.Kernels;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.tier.DiskTier;
import io.flexstream.tier.MemoryTier;
import io.flexstream.tier.Sizes;
import io.flexstream.tier.TierKind;
import io.flexstream.tier.TierShares;
import io.flexstream.tier.Tiers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.Callable;
import java.util.function.ToDoubleFunction;

/**
 * {@code flexstream bench offload}: the offloading engine with every weight on disk (O_DIRECT) at one block size, in
 * one run: the zig-zag block schedule against the row-by-row schedule; fp32, fp16 and 4-bit weight storage on disk
 * and in memory; and the overlap efficiency of each zig-zag decode step against its two lower bounds measured in the
 * same run (reading the step's weights at the disk bandwidth measured through the disk tier's own reader
 * configuration; computing the step with the weights in memory, in the same storage format).
 */
@Command(name = "offload", mixinStandardHelpOptions = true,
        description = "Weights on disk: zig-zag vs row schedule, fp16 vs 4-bit weights, I/O-compute overlap.")
public final class BenchOffloadCommand implements Callable<Integer> {

    @Option(names = "--shape", defaultValue = "opt-1.3b", description = "OPT shape (default: ${DEFAULT-VALUE}).")
    String shape;

    @Option(names = "--layers", defaultValue = "8", description = "Decoder layers kept (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--gpu-batch-size", defaultValue = "4", description = "Default: ${DEFAULT-VALUE}.")
    int gbs;

    @Option(names = "--num-gpu-batches", defaultValue = "8", description = "Block = gbs x this (default: "
            + "${DEFAULT-VALUE}).")
    int nb;

    @Option(names = "--prompt-len", defaultValue = "16", description = "Default: ${DEFAULT-VALUE}.")
    int promptLen;

    @Option(names = "--gen-len", defaultValue = "4", description = "Default: ${DEFAULT-VALUE}.")
    int genLen;

    @Option(names = "--offload-dir", defaultValue = "flexstream-offload",
            description = "Disk tier directory; must be a real disk, not tmpfs (default: ${DEFAULT-VALUE}).")
    Path offloadDir;

    @picocli.CommandLine.Mixin
    BackendOptions backend = new BackendOptions();

    @Option(names = "--skip-row", description = "Skip the (slow) row-schedule run.")
    boolean skipRow;

    @Option(names = "--formats", split = ",", defaultValue = "FP32,FP16,INT4",
            description = "Weight storage formats to run, on disk and in memory (default: ${DEFAULT-VALUE}).")
    List<WeightFormat> formats;

    @Option(names = "--rounds", defaultValue = "3", description = "Rounds of the on-disk runs: per round one "
            + "zig-zag run of every format (and one row run), the order alternating from round to round. The disk's "
            + "speed drifts on a shared host, so runs are compared within a round and ratios are medians over rounds "
            + "(default: ${DEFAULT-VALUE}).")
    int rounds;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (rounds < 1) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--rounds must be at least 1, got "
                    + rounds);
        }
        OptConfig config = OptConfig.shape(shape).withNumLayers(layers);
        System.out.printf("command: flexstream bench offload --shape %s --layers %d --gpu-batch-size %d "
                        + "--num-gpu-batches %d --prompt-len %d --gen-len %d --offload-dir %s --rounds %d "
                        + "--formats %s%s%n",
                shape, layers, gbs, nb, promptLen, genLen, offloadDir, rounds,
                String.join(",", formats.stream().map(Enum::name).toList()), skipRow ? " --skip-row" : "");
        System.out.println("machine: " + MachineInfo.describe());
        double bandwidth = measureDiskBandwidth(false);
        measureDiskBandwidth(true);
        // Several engines share one backend and one set of weights: the cuda weight cache must verify its hits.
        Kernels kernels = backend.kernels(0, null, true, System.out::println);
        try (Arena arena = Arena.ofShared()) {
            OptWeights weights = OptWeights.random(config, 1, arena);
            List<GenerationRequest> requests = requests(config);
            TierShares disk = new TierShares(0, 0);
            Placement zigzag = new Placement(gbs, nb, disk, TierShares.ALL_DEVICE, TierShares.ALL_DEVICE, false,
                    ScheduleKind.ZIGZAG);
            Map<WeightFormat, Result> inMemory = new EnumMap<>(WeightFormat.class);
            for (WeightFormat format : formats) {
                inMemory.put(format, run(format + ", weights in memory (compute alone)", weights, kernels,
                        Placement.allDevice(gbs, nb), requests, options(format)));
            }
            Map<WeightFormat, List<Result>> diskRounds = new EnumMap<>(WeightFormat.class);
            List<Result> rowRounds = new ArrayList<>(); // the first format's row schedule, one run per round
            WeightFormat rowFormat = formats.getFirst();
            for (int round = 0; round < rounds; round++) {
                List<WeightFormat> order = new ArrayList<>(formats);
                if (round % 2 == 1) {
                    Collections.reverse(order); // neither format always runs on the fresher disk
                }
                if (!skipRow && round % 2 == 1) {
                    rowRounds.add(runRow(rowFormat, round, weights, kernels, zigzag, requests));
                }
                for (WeightFormat format : order) {
                    diskRounds.computeIfAbsent(format, f -> new ArrayList<>()).add(run(format + ", zig-zag, weights "
                            + "on disk, round " + (round + 1), weights, kernels, zigzag, requests, options(format)));
                }
                if (!skipRow && round % 2 == 0) {
                    rowRounds.add(runRow(rowFormat, round, weights, kernels, zigzag, requests));
                }
            }
            Map<WeightFormat, Result> onDisk = new EnumMap<>(WeightFormat.class);
            diskRounds.forEach((format, results) -> onDisk.put(format, medianByStep(results)));
            System.out.printf("%n== results (block %d x %d, %d decoder layers of %s, %d prompts of %d tokens, %d "
                    + "generated each; decode step = median; %s)%n", gbs, nb, layers, shape, gbs * nb, promptLen,
                    genLen, MachineInfo.loadAverage());
            for (WeightFormat format : formats) {
                Result d = onDisk.get(format);
                Result m = inMemory.get(format);
                double read = d.diskWeightBytes / bandwidth;
                double bound = Math.max(read, m.decodeStep);
                System.out.printf("overlap efficiency, %s: decode step %.3f s vs max(disk read %.3f s = %s at %.2f "
                                + "GB/s, compute alone %.3f s) -> %.2fx the bound (target <= 1.25x)%n", format,
                        d.decodeStep, read, Sizes.format(d.diskWeightBytes), bandwidth / 1e9, m.decodeStep,
                        d.decodeStep / bound);
            }
            if (onDisk.containsKey(WeightFormat.INT4) && onDisk.containsKey(WeightFormat.FP16)) {
                Result q = onDisk.get(WeightFormat.INT4);
                Result h = onDisk.get(WeightFormat.FP16);
                String paired = pairedRounds(diskRounds.get(WeightFormat.INT4), diskRounds.get(WeightFormat.FP16),
                        Result::decodeTokensPerS);
                System.out.printf("4-bit vs fp16 weights on disk (same block): decode tokens/s per round %s (target >= "
                        + "2.5x); weights read per step %s vs %s%n", paired, Sizes.format(q.diskWeightBytes),
                        Sizes.format(h.diskWeightBytes));
                Result qm = inMemory.get(WeightFormat.INT4);
                Result hm = inMemory.get(WeightFormat.FP16);
                System.out.printf("4-bit vs fp16 weights in memory: decode %.2f vs %.2f tokens/s -> %.2fx (target "
                                + ">= 1)%n", qm.decodeTokensPerS, hm.decodeTokensPerS,
                        qm.decodeTokensPerS / hm.decodeTokensPerS);
            }
            if (inMemory.containsKey(WeightFormat.INT4) && inMemory.containsKey(WeightFormat.FP32)) {
                Result qm = inMemory.get(WeightFormat.INT4);
                Result fm = inMemory.get(WeightFormat.FP32);
                System.out.printf("4-bit vs fp32 weights in memory: decode %.2f vs %.2f tokens/s -> %.2fx%n",
                        qm.decodeTokensPerS, fm.decodeTokensPerS, qm.decodeTokensPerS / fm.decodeTokensPerS);
            }
            if (!skipRow) {
                String paired = pairedRounds(diskRounds.get(rowFormat), rowRounds, Result::tokensPerS);
                System.out.printf("zig-zag vs row, %s weights on disk (block %d x %d, same gbs): tokens/s per round %s "
                        + "(target >= 4x)%n", rowFormat, gbs, nb, paired);
            }
        } finally {
            if (kernels instanceof AutoCloseable owned) { // after every engine that used the kernels
                owned.close();
            }
        }
        return 0;
    }

    private EngineOptions options(WeightFormat format) {
        EngineOptions plain = new EngineOptions(gbs * nb, false);
        return switch (format) {
            case FP32 -> plain;
            case FP16 -> plain.withFp16Weights(true);
            case INT4 -> plain.withCompressWeight(true);
        };
    }

    private Result runRow(WeightFormat format, int round, OptWeights weights, Kernels kernels, Placement zigzag,
                          List<GenerationRequest> requests) {
        return run(format + ", row schedule, weights on disk, round " + (round + 1), weights, kernels,
                zigzag.withSchedule(ScheduleKind.ROW), requests, options(format));
    }

    /** "a / b = r, ... -> median Rx": round r's {@code metric} of runs a and b, and the median of their ratios. */
    private static String pairedRounds(List<Result> a, List<Result> b,
                                       ToDoubleFunction<Result> metric) {
        double[] ratios = new double[a.size()];
        StringBuilder text = new StringBuilder();
        for (int r = 0; r < a.size(); r++) {
            double x = metric.applyAsDouble(a.get(r));
            double y = metric.applyAsDouble(b.get(r));
            ratios[r] = x / y;
            text.append(String.format(Locale.ROOT, "%s%.2f / %.2f = %.2fx", r == 0 ? "" : ", ", x, y,
                    ratios[r]));
        }
        Arrays.sort(ratios);
        int n = ratios.length;
        double median = n % 2 == 1 ? ratios[n / 2] : (ratios[n / 2 - 1] + ratios[n / 2]) / 2;
        return text + String.format(Locale.ROOT, " -> median %.2fx", median);
    }

    /** The run with the median decode step (the upper one of an even count). */
    private static Result medianByStep(List<Result> results) {
        List<Result> sorted = new ArrayList<>(results);
        sorted.sort(Comparator.comparingDouble(Result::decodeStep));
        return sorted.get(sorted.size() / 2);
    }

    /**
     * @param tokensPerS       generated tokens over the whole run (prefill included)
     * @param decodeStep       median decode step, seconds
     * @param decodeTokensPerS sequences of the block over the median decode step
     * @param diskWeightBytes  weight bytes one token step reads from disk
     */
    private record Result(double tokensPerS, double decodeStep, double decodeTokensPerS, long diskWeightBytes) {
    }

    private Result run(String label, OptWeights weights, Kernels kernels, Placement placement,
                       List<GenerationRequest> requests, EngineOptions options) {
        Tiers tiers = new Tiers(64L << 30, 64L << 30, offloadDir, 512L << 30, true);
        try (OffloadedGenerator engine = new OffloadedGenerator(weights, null, kernels, placement, tiers,
                options, shape, null, tiers)) {
            List<PreparedPrompt> prompts = new ArrayList<>();
            for (GenerationRequest r : requests) {
                prompts.add(engine.prepare(r));
            }
            List<Double> steps = new ArrayList<>();
            double[] prefill = new double[1];
            long start = System.nanoTime();
            engine.generate(prompts, new GenerationListener() {
                @Override
                public void prefillDone(int sequences, int promptTokens, long nanos) {
                    prefill[0] = nanos / 1e9;
                }

                @Override
                public void decodeStep(int step, int maxSteps, int active, long nanos) {
                    steps.add(nanos / 1e9);
                }
            });
            double secs = (System.nanoTime() - start) / 1e9;
            double tokensPerS = prompts.size() * (double) genLen / secs;
            double[] sorted = steps.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            double median = sorted.length == 0 ? 0 : sorted[sorted.length / 2];
            System.out.printf("%-46s total %.2f s, prefill %.2f s, decode steps %s (median %.3f s), %.2f tokens/s; "
                            + "%s%n", label + ":", secs, prefill[0], Arrays.toString(sorted.length > 8
                            ? Arrays.copyOf(sorted, 8) : sorted).replaceAll("(\\.\\d{3})\\d+", "$1"), median,
                    tokensPerS, MachineInfo.loadAverage());
            System.out.println(engine.placementReport());
            return new Result(tokensPerS, median, median == 0 ? 0 : prompts.size() / median,
                    engine.weightBytesLoadedPerStep(TierKind.DISK));
        } catch (Exception e) {
            throw new IllegalStateException(label + " failed: " + e.getMessage(), e);
        }
    }

    private List<GenerationRequest> requests(OptConfig config) {
        SplittableRandom random = new SplittableRandom(7);
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < gbs * nb; i++) {
            int[] ids = new int[promptLen];
            for (int t = 0; t < promptLen; t++) {
                ids[t] = 4 + random.nextInt(config.vocabSize() - 4);
            }
            out.add(GenerationRequest.tokens("b" + i, ids, SamplingParams.greedy(genLen)));
        }
        return out;
    }

    /**
     * Sequential O_DIRECT read bandwidth of the offload directory in bytes per second (median of 5 reads of 1 GiB),
     * through the disk tier itself, so with the engine's reader threads and request size. With {@code busy}, two
     * threads keep both cores computing meanwhile: on this VM the disk and the CPUs are coupled, and that is the
     * bandwidth the engine gets while it computes. The overlap target is judged against the quiet figure.
     */
    private double measureDiskBandwidth(boolean busy) {
        long bytes = 1L << 30;
        long bufferBytes = 256L << 20;
        MemoryTier host = new MemoryTier(TierKind.HOST, bufferBytes);
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> burners = new ArrayList<>();
        try (DiskTier disk = new DiskTier(offloadDir, bytes, true);
             DiskTier.Region region = disk.allocate(bytes, "bandwidth probe");
             MemoryTier.Buffer buffer = host.allocate(bufferBytes, "bandwidth probe")) {
            for (long at = 0; at < bytes; at += buffer.bytes()) {
                region.write(at, buffer.segment(), 0, buffer.bytes());
            }
            if (busy) {
                for (int i = 0; i < Runtime.getRuntime().availableProcessors(); i++) {
                    Thread t = new Thread(() -> burn(stop), "bandwidth-probe-compute-" + i);
                    t.setDaemon(true);
                    t.start();
                    burners.add(t);
                }
            }
            double[] rates = new double[5];
            for (int r = 0; r < rates.length; r++) {
                long t0 = System.nanoTime();
                for (long at = 0; at < bytes; at += buffer.bytes()) {
                    region.read(at, buffer.segment(), 0, buffer.bytes());
                }
                rates[r] = bytes / ((System.nanoTime() - t0) / 1e9);
            }
            Arrays.sort(rates);
            System.out.printf("disk, %s: %s sequential read through the disk tier (%d readers x %s requests), "
                            + "O_DIRECT %s: %.2f GB/s (median of 5; %.2f..%.2f); %s%n",
                    busy ? "WHILE BOTH CORES COMPUTE (not the target's bandwidth)" : "quiet (this process idle)",
                    Sizes.format(bytes), DiskTier.READERS, Sizes.format(DiskTier.CHUNK),
                    disk.direct() ? "on" : "OFF (page cache: numbers are not disk numbers)", rates[2] / 1e9,
                    rates[0] / 1e9, rates[4] / 1e9, MachineInfo.loadAverage());
            return rates[2];
        } finally {
            stop.set(true);
            for (Thread t : burners) {
                try {
                    t.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    /** Floating-point work on a cache-resident array until told to stop: a stand-in for the engine's compute. */
    private static void burn(AtomicBoolean stop) {
        float[] x = new float[1 << 14];
        while (!stop.get()) {
            for (int i = 0; i < x.length; i++) {
                x[i] = x[i] * 0.999f + 1f;
            }
        }
    }
}
