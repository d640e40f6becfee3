package io.flexstream.cli;

import io.flexstream.engine.EngineOptions;
import io.flexstream.engine.GenerationListener;
import io.flexstream.engine.GenerationRequest;
import io.flexstream.engine.OffloadedGenerator;
import io.flexstream.engine.Placement;
import io.flexstream.engine.PreparedPrompt;
import io.flexstream.engine.SamplingParams;
import io.flexstream.engine.ScheduleKind;
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
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code flexstream bench offload}: the offloading engine with every weight on disk (O_DIRECT), the zig-zag block
 * schedule against the row-by-row schedule at the same GPU batch size, and the overlap efficiency of the zig-zag
 * decode step against its two lower bounds measured in the same run (reading the step's weights at the measured disk
 * bandwidth; computing the step with the weights in memory).
 */
@Command(name = "offload", mixinStandardHelpOptions = true,
        description = "Weights on disk: zig-zag block schedule vs row schedule, and I/O-compute overlap efficiency.")
public final class BenchOffloadCommand implements Callable<Integer> {

    @Option(names = "--shape", defaultValue = "opt-1.3b", description = "OPT shape (default: ${DEFAULT-VALUE}).")
    String shape;

    @Option(names = "--layers", defaultValue = "4", description = "Decoder layers kept (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--gpu-batch-size", defaultValue = "8", description = "Default: ${DEFAULT-VALUE}.")
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

    @Option(names = "--compression", description = "Also run 4-bit compressed weights, on disk and in memory, "
            + "against the fp32 runs.")
    boolean compression;

    @Override
    public Integer call() throws Exception {
        OptConfig config = OptConfig.shape(shape).withNumLayers(layers);
        System.out.printf("command: flexstream bench offload --shape %s --layers %d --gpu-batch-size %d "
                        + "--num-gpu-batches %d --prompt-len %d --gen-len %d --offload-dir %s%s%s%n", shape, layers,
                gbs, nb, promptLen, genLen, offloadDir, skipRow ? " --skip-row" : "", compression ? " --compression" : "");
        System.out.println("machine: " + MachineInfo.describe());
        double bandwidth = measureDiskBandwidth();
        // Several engines share one backend and one set of weights: the cuda weight cache must verify its hits.
        Kernels kernels = backend.kernels(0, null, true, System.out::println);
        try (Arena arena = Arena.ofShared()) {
            OptWeights weights = OptWeights.random(config, 1, arena);
            List<GenerationRequest> requests = requests(config);
            TierShares disk = new TierShares(0, 0);
            Placement zigzag = new Placement(gbs, nb, disk, TierShares.ALL_DEVICE, TierShares.ALL_DEVICE, false,
                    ScheduleKind.ZIGZAG);
            Result memory = run("compute alone (weights in memory)", weights, kernels,
                    Placement.allDevice(gbs, nb), requests);
            Result onDisk = run("zig-zag, weights on disk", weights, kernels, zigzag, requests);
            double stepReadSeconds = onDisk.diskWeightBytes / bandwidth;
            System.out.printf("%nweights read per token step (token table rows aside): %s; at %.2f GB/s that is %.3f s%n",
                    Sizes.format(onDisk.diskWeightBytes), bandwidth / 1e9, stepReadSeconds);
            double bound = Math.max(stepReadSeconds, memory.decodeStep);
            System.out.printf("overlap efficiency: zig-zag decode step %.3f s vs max(disk read %.3f s, compute "
                            + "%.3f s) = %.3f s -> %.2fx the bound (target <= 1.25x)%n", onDisk.decodeStep,
                    stepReadSeconds, memory.decodeStep, bound, onDisk.decodeStep / bound);
            if (compression) {
                EngineOptions q = new EngineOptions(gbs * nb, false, true);
                Result qMemory = run("4-bit, weights in memory", weights, kernels, Placement.allDevice(gbs, nb),
                        requests, q);
                Result qDisk = run("4-bit, zig-zag, weights on disk", weights, kernels, zigzag, requests, q);
                System.out.printf("4-bit vs fp32 weights on disk (decode step, same block): %.3f s vs %.3f s -> "
                        + "%.2fx decode tokens/s; weights read per step %s vs %s%n", qDisk.decodeStep,
                        onDisk.decodeStep, onDisk.decodeStep / qDisk.decodeStep, Sizes.format(qDisk.diskWeightBytes),
                        Sizes.format(onDisk.diskWeightBytes));
                System.out.printf("4-bit vs fp32 weights in memory (decode step): %.3f s vs %.3f s -> %.2fx%n",
                        qMemory.decodeStep, memory.decodeStep, memory.decodeStep / qMemory.decodeStep);
            }
            if (!skipRow) {
                Result row = run("row schedule, weights on disk", weights, kernels,
                        zigzag.withSchedule(ScheduleKind.ROW), requests);
                System.out.printf("zig-zag vs row (block %d x %d, same gbs): %.2f vs %.2f tokens/s -> %.2fx "
                        + "(target >= 4x)%n", gbs, nb, onDisk.tokensPerS, row.tokensPerS,
                        onDisk.tokensPerS / row.tokensPerS);
            }
        } finally {
            if (kernels instanceof AutoCloseable owned) { // after every engine that used the kernels
                owned.close();
            }
        }
        return 0;
    }

    private record Result(double tokensPerS, double decodeStep, long diskWeightBytes) {
    }

    private Result run(String label, OptWeights weights, Kernels kernels, Placement placement,
                       List<GenerationRequest> requests) {
        return run(label, weights, kernels, placement, requests, new EngineOptions(placement.blockSize(), false));
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
            System.out.printf("%-36s total %.2f s, prefill %.2f s, decode steps %s (median %.3f s), %.2f tokens/s%n",
                    label + ":", secs, prefill[0], Arrays.toString(sorted.length > 8 ? Arrays.copyOf(sorted, 8)
                            : sorted).replaceAll("(\\.\\d{3})\\d+", "$1"), median, tokensPerS);
            System.out.println(engine.placementReport());
            return new Result(tokensPerS, median, weightsOnDisk(engine, tiers));
        } catch (Exception e) {
            throw new IllegalStateException(label + " failed: " + e.getMessage(), e);
        }
    }

    private static long weightsOnDisk(OffloadedGenerator engine, Tiers tiers) {
        return engine.weightBytesLoadedPerStep(TierKind.DISK);
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

    /** Sequential O_DIRECT read bandwidth of the offload directory, bytes per second (median of 3 reads). */
    private double measureDiskBandwidth() {
        long bytes = 1L << 30;
        DiskTier disk = new DiskTier(offloadDir, bytes, true);
        MemoryTier host = new MemoryTier(TierKind.HOST, 64L << 20);
        try (DiskTier.Region region = disk.allocate(bytes, "bandwidth probe");
             MemoryTier.Buffer buffer = host.allocate(64L << 20, "bandwidth probe")) {
            for (long at = 0; at < bytes; at += buffer.bytes()) {
                region.write(at, buffer.segment(), 0, buffer.bytes());
            }
            double[] rates = new double[3];
            for (int r = 0; r < 3; r++) {
                long t0 = System.nanoTime();
                for (long at = 0; at < bytes; at += buffer.bytes()) {
                    region.read(at, buffer.segment(), 0, buffer.bytes());
                }
                rates[r] = bytes / ((System.nanoTime() - t0) / 1e9);
            }
            Arrays.sort(rates);
            System.out.printf("disk: %s sequential read, O_DIRECT %s: %.2f GB/s (median of 3)%n",
                    Sizes.format(bytes), disk.direct() ? "on" : "OFF (page cache: numbers are not disk numbers)",
                    rates[1] / 1e9);
            return rates[1];
        }
    }
}
