package io.flexstream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flexstream.engine.EngineOptions;
import io.flexstream.engine.Placement;
import io.flexstream.engine.ScheduleKind;
import io.flexstream.tier.Sizes;
import io.flexstream.tier.TierShares;
import io.flexstream.tier.Tiers;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The offloading policy flags shared by {@code generate} and {@code bench}, with FlexGen's own names so FlexGen users
 * feel at home. Without any of them the plain in-memory engine runs.
 */
final class OffloadOptions {

    @Option(names = "--percent", arity = "6", paramLabel = "P",
            description = "FlexGen's placement: WG WC CG CC HG HC, the percent of weights, KV cache and activations "
                    + "on the device (G) and host (C); the disk takes the rest.")
    List<Double> percent;

    @Option(names = "--gpu-batch-size", description = "Sequences per GPU batch (default: 4 with --percent).")
    Integer gpuBatchSize;

    @Option(names = "--num-gpu-batches", description = "GPU batches per block (default: 1 with --percent).")
    Integer numGpuBatches;

    @Option(names = "--cpu-cache-compute", description = "Run decode attention where a host-resident cache lives.")
    boolean cpuCacheCompute;

    @Option(names = "--schedule", description = "zigzag (FlexGen's block schedule) or row (one batch at a time); "
            + "default zigzag.")
    ScheduleKind schedule;

    @Option(names = "--device-mem", description = "Device tier budget, e.g. 2g (default: 4g).")
    String deviceMem;

    @Option(names = "--host-mem", description = "Host tier budget, e.g. 16g (default: 16g).")
    String hostMem;

    @Option(names = "--disk-mem", description = "Disk tier budget (default: 256g).")
    String diskMem;

    @Option(names = "--offload-dir", description = "Spill directory of the disk tier (default: ./flexstream-offload).")
    Path offloadDir;

    @Option(names = "--no-direct-io", description = "Use the page cache for the disk tier instead of O_DIRECT.")
    boolean noDirectIo;

    @Option(names = "--compress-weight", description = "Keep the decoder layers' matrices 4-bit group-wise "
            + "compressed (FlexGen's scheme: groups of 64, min/max, about 0.14x the bytes of fp32); also without "
            + "offloading.")
    boolean compressWeight;

    @Option(names = "--compress-cache", description = "Keep the KV cache 4-bit group-wise compressed per token "
            + "along the head dimension (FlexGen's scheme; 0.28x the bytes of fp16 with head_dim 64 or 128), read "
            + "compressed by attention; also without offloading.")
    boolean compressCache;

    @Option(names = "--weight-cache-dir", description = "Where --compress-weight keeps a checkpoint's compressed "
            + "weights between starts (default: .flexstream-cache inside the checkpoint directory).")
    Path weightCacheDir;

    @Option(names = "--fp16-weights", description = "Store the weights as IEEE fp16 in the offloading engine's "
            + "tiers (half the bytes of fp32 on every transfer), widened to fp32 as each layer loads; tokens are "
            + "those of the weights rounded to fp16. Implies the offloading engine; excludes --compress-weight.")
    boolean fp16Weights;

    @Option(names = "--policy", description = "JSON policy file (the output of `flexstream policy --json`): "
            + "gpu_batch_size, num_gpu_batches, percent, cpu_cache_compute; flags override it.")
    Path policyFile;

    /** True when any flag asks for the offloading engine. */
    boolean offloading() {
        return percent != null || gpuBatchSize != null || numGpuBatches != null || cpuCacheCompute
                || schedule != null || deviceMem != null || hostMem != null || offloadDir != null
                || policyFile != null || fp16Weights;
    }

    Placement placement() throws IOException {
        double[] p = {100, 0, 100, 0, 100, 0};
        int gbs = 4;
        int nb = 1;
        boolean delegate = cpuCacheCompute;
        if (policyFile != null) {
            JsonNode node = new ObjectMapper().readTree(Files.readString(policyFile));
            if (node.has("gpu_batch_size")) {
                gbs = node.get("gpu_batch_size").asInt();
            }
            if (node.has("num_gpu_batches")) {
                nb = node.get("num_gpu_batches").asInt();
            }
            if (node.has("percent")) {
                JsonNode a = node.get("percent");
                if (!a.isArray() || a.size() != 6) {
                    throw new IllegalArgumentException(policyFile + ": percent must be six numbers WG WC CG CC HG HC");
                }
                for (int i = 0; i < 6; i++) {
                    p[i] = a.get(i).asDouble();
                }
            }
            delegate |= node.path("cpu_cache_compute").asBoolean(false);
        }
        if (percent != null) {
            for (int i = 0; i < 6; i++) {
                p[i] = percent.get(i);
            }
        }
        gbs = gpuBatchSize != null ? gpuBatchSize : gbs;
        nb = numGpuBatches != null ? numGpuBatches : nb;
        return new Placement(gbs, nb, shares("weights", p[0], p[1]), shares("cache", p[2], p[3]),
                shares("activations", p[4], p[5]), delegate, schedule == null ? ScheduleKind.ZIGZAG : schedule);
    }

    private static TierShares shares(String what, double g, double c) {
        if (g < 0 || c < 0 || g > 100 || c > 100 || g + c > 100 + 1e-9) {
            throw new IllegalArgumentException("--percent for " + what + ": device " + g + " and host " + c
                    + " must each be in [0, 100] and sum to at most 100 (the disk takes the rest)");
        }
        return new TierShares(g / 100, c / 100);
    }

    /** --compress-weight, or compress_weight in the policy file. */
    boolean compressWeight() throws IOException {
        return compressWeight || policyFlag("compress_weight");
    }

    /** --compress-cache, or compress_cache in the policy file. */
    boolean compressCache() throws IOException {
        return compressCache || policyFlag("compress_cache");
    }

    private boolean policyFlag(String field) throws IOException {
        return policyFile != null && new ObjectMapper().readTree(Files.readString(policyFile)).path(field)
                .asBoolean(false);
    }

    /** {@code base} with the compression choices of these flags (and the policy file). */
    EngineOptions engineOptions(EngineOptions base) throws IOException {
        return base.withCompressWeight(compressWeight()).withCompressCache(compressCache())
                .withFp16Weights(fp16Weights).withWeightCacheDir(weightCacheDir);
    }

    Tiers tiers() {
        return new Tiers(Sizes.parse(deviceMem == null ? "4g" : deviceMem), Sizes.parse(hostMem == null ? "16g" : hostMem),
                offloadDir == null ? Path.of("flexstream-offload") : offloadDir,
                Sizes.parse(diskMem == null ? "256g" : diskMem), !noDirectIo);
    }
}
