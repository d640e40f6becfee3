package io.flexstream.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flexstream.policy.CostModel;
import io.flexstream.policy.HardwareProfile;
import io.flexstream.policy.InfeasiblePolicyException;
import io.flexstream.policy.LpVariable;
import io.flexstream.policy.ModelShape;
import io.flexstream.policy.Pins;
import io.flexstream.policy.Policy;
import io.flexstream.policy.PolicySearch;
import io.flexstream.policy.Prediction;
import io.flexstream.policy.Solution;
import io.flexstream.policy.Workload;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code flexstream policy}: searches the offloading policy with the highest predicted throughput for a model, a
 * workload and a machine profile, and prints it as a table or as one JSON object (which {@code generate --policy}
 * reads). Exit code 0 on success, 2 when no policy fits (the message names the binding constraint).
 */
@Command(name = "policy", mixinStandardHelpOptions = true,
        description = "Search the offloading policy (batch sizes and tier placement) with the LP over the cost model.")
public final class PolicyCommand implements Callable<Integer> {

    enum CostModeOption { flexgen, flexstream }

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true,
            description = "A model shape name (opt-125m ... opt-175b, galactica-30b) or a checkpoint directory with config.json.")
    String model;

    @Option(names = "--prompt-len", required = true, description = "Prompt tokens per sequence (after padding).")
    int promptLen;

    @Option(names = "--gen-len", required = true, description = "Tokens generated per sequence.")
    int genLen;

    @Option(names = "--hardware", defaultValue = "t4-flexgen",
            description = "Built-in profile name or a profile JSON file (default: ${DEFAULT-VALUE}).")
    String hardware;

    @Option(names = "--cost-mode", defaultValue = "flexstream",
            description = "flexgen: FlexGen's cost model term for term (reproduces its published search); "
                    + "flexstream: our engine's overlap and compression (default: ${DEFAULT-VALUE}).")
    CostModeOption costMode;

    @Option(names = "--alpha", defaultValue = "0.8",
            description = "Capacity relaxation: each tier may use alpha x its capacity (default: ${DEFAULT-VALUE}).")
    double alpha;

    @Option(names = "--element-bytes", defaultValue = "2",
            description = "flexstream mode: bytes per stored element, 2 (fp16, GPU backend) or 4 (fp32, CPU backend, "
                    + "which also computes the decode of a block held wholly on the device in one pass) "
                    + "(default: ${DEFAULT-VALUE}).")
    int elementBytes;

    @Option(names = "--compress-weight", description = "4-bit group-wise weights.")
    boolean compressWeight;

    @Option(names = "--compress-cache", description = "4-bit group-wise KV cache.")
    boolean compressCache;

    @Option(names = "--cpu-cache-compute", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "flexstream mode: run decode attention on the host for off-device cache (default: on; "
                    + "FlexGen's model always assumes it).")
    boolean cpuCacheCompute;

    @Option(names = "--gpu-batch-size", description = "Pin gbs.")
    Integer gpuBatchSize;

    @Option(names = "--num-gpu-batches", description = "Pin nb.")
    Integer numGpuBatches;

    @Option(names = "--percent", arity = "6", paramLabel = "P",
            description = "Pin all six shares WG WC CG CC HG HC (percent; disk takes the rest).")
    List<Double> percent;

    @Option(names = "--pin", paramLabel = "SHARE=PERCENT",
            description = "Pin one share, e.g. --pin wn=10 (wg wc wn cg cc cn hg hc hn); repeatable.")
    Map<String, Double> pin;

    @Option(names = "--max-block-size", description = "Cap gbs x nb (a partial block).")
    Integer maxBlockSize;

    @Option(names = "--gpu-mem", description = "Override the profile's device capacity, GB (2^30 bytes).")
    Double gpuMemGb;

    @Option(names = "--cpu-mem", description = "Override the profile's host capacity, GB.")
    Double cpuMemGb;

    @Option(names = "--disk-mem", description = "Override the profile's disk capacity, GB.")
    Double diskMemGb;

    @Option(names = "--json", description = "Print one JSON object instead of the table.")
    boolean json;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Workload w;
        HardwareProfile hw;
        Pins pins;
        try {
            ModelShape shape = Files.isDirectory(Path.of(model)) ? ModelShape.fromConfig(Path.of(model)) : ModelShape.named(model);
            w = new Workload(shape, promptLen, genLen, compressWeight, compressCache, cpuCacheCompute);
            hw = HardwareProfile.load(hardware);
            if (gpuMemGb != null || cpuMemGb != null || diskMemGb != null) {
                hw = hw.withCapacities(gb(gpuMemGb, hw.deviceMemoryBytes()), gb(cpuMemGb, hw.hostMemoryBytes()),
                        gb(diskMemGb, hw.diskBytes()));
            }
            pins = pins();
        } catch (RuntimeException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage(), e);
        }
        CostModel.Mode mode = costMode == CostModeOption.flexgen ? CostModel.Mode.FLEXGEN : CostModel.Mode.FLEXSTREAM;
        CostModel.Calibration calibration;
        try {
            // 4 bytes means the CPU backend, which also fuses the decode of blocks held wholly on the device and
            // serves the disk cache's requests on its compute cores.
            calibration = new CostModel.Calibration(CostModel.Calibration.DEFAULT.compressedBytesPerElement(),
                    elementBytes, elementBytes == 4, elementBytes == 4);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--element-bytes: " + e.getMessage(), e);
        }
        PolicySearch search = new PolicySearch(new CostModel(hw, mode, alpha, calibration));
        long t0 = System.nanoTime();
        PolicySearch.Result result;
        try {
            result = search.search(w, pins);
        } catch (InfeasiblePolicyException e) {
            err.println("flexstream policy: " + e.getMessage());
            err.flush();
            return 2;
        }
        long loadNanos = Math.max(0, System.nanoTime() - t0 - result.nanos());
        if (json) out.println(toJson(w, hw, result));
        else printTable(out, w, hw, result, loadNanos);
        out.flush();
        return 0;
    }

    private static long gb(Double value, long otherwise) {
        if (value == null) return otherwise;
        if (!(value >= 0)) throw new IllegalArgumentException("memory sizes must be >= 0 GB, got " + value);
        return (long) (value * HardwareProfile.GIB);
    }

    private Pins pins() {
        Pins p = Pins.NONE;
        if (gpuBatchSize != null) p = p.withGpuBatchSize(gpuBatchSize);
        if (numGpuBatches != null) p = p.withNumGpuBatches(numGpuBatches);
        if (maxBlockSize != null) p = p.withMaxBlockSize(maxBlockSize);
        if (percent != null) {
            StringBuilder text = new StringBuilder();
            for (double v : percent) text.append(v).append(' ');
            p = p.withPercent(Policy.parsePercent(text.toString()));
        }
        if (pin != null) {
            for (Map.Entry<String, Double> e : pin.entrySet()) {
                LpVariable v;
                try {
                    v = LpVariable.valueOf(e.getKey().trim().toUpperCase(Locale.ROOT));
                } catch (IllegalArgumentException ex) {
                    v = null;
                }
                if (v == null || !v.isShare()) {
                    throw new IllegalArgumentException("--pin " + e.getKey() + ": not a share; use wg wc wn cg cc cn hg hc hn");
                }
                p = p.withShare(v, e.getValue());
            }
        }
        return p;
    }

    private String toJson(Workload w, HardwareProfile hw, PolicySearch.Result r) {
        Solution s = r.best();
        Policy p = s.policy();
        Prediction pr = s.prediction();
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode o = mapper.createObjectNode();
        o.put("model", w.model().name());
        o.put("prompt_len", w.promptLen());
        o.put("gen_len", w.genLen());
        o.put("hardware", hw.name());
        o.put("cost_mode", costMode.name());
        o.put("alpha", alpha);
        o.put("gpu_batch_size", p.gpuBatchSize());
        o.put("num_gpu_batches", p.numGpuBatches());
        o.put("block_size", p.blockSize());
        ArrayNode pct = o.putArray("percent");
        for (double v : p.percent()) pct.add(Math.round(v * 1e4) / 1e4);
        o.put("cpu_cache_compute", p.cpuCacheCompute());
        o.put("compress_weight", p.compressWeight());
        o.put("compress_cache", p.compressCache());
        o.put("prefill_seconds_per_layer", pr.prefillSecondsPerLayer());
        o.put("decode_seconds_per_layer", pr.decodeSecondsPerLayer());
        o.put("block_seconds", pr.totalSeconds());
        o.put("throughput_tokens_per_s", s.throughput());
        ObjectNode peak = o.putObject("peak_memory_bytes");
        peak.put("device", Math.round(pr.peakDeviceBytes()));
        peak.put("host", Math.round(pr.peakHostBytes()));
        peak.put("disk", Math.round(pr.diskBytes()));
        ObjectNode cap = o.putObject("capacity_bytes");
        cap.put("device", hw.deviceMemoryBytes());
        cap.put("host", hw.hostMemoryBytes());
        cap.put("disk", hw.diskBytes());
        o.put("lps_solved", r.lpsSolved());
        o.put("search_ms", r.nanos() / 1e6);
        return o.toString();
    }

    private void printTable(PrintWriter out, Workload w, HardwareProfile hw, PolicySearch.Result r, long loadNanos) {
        Solution s = r.best();
        Policy p = s.policy();
        Prediction pr = s.prediction();
        double gib = HardwareProfile.GIB;
        out.printf(Locale.ROOT, "policy for %s, prompt %d, generate %d tokens; hardware %s, cost mode %s, alpha %s%n",
                w.model().name(), w.promptLen(), w.genLen(), hw.name(), costMode, fmt(alpha));
        out.printf(Locale.ROOT, "  block            gpu batch size %d x %d gpu batches = %d sequences%n",
                p.gpuBatchSize(), p.numGpuBatches(), p.blockSize());
        out.printf(Locale.ROOT, "  --percent        %s%n", p.formatPercent());
        out.printf(Locale.ROOT, "  %-16s %8s %8s %8s%n", "share (%)", "device", "host", "disk");
        row(out, "weights", p.weightGpu(), p.weightCpu(), p.weightDisk());
        row(out, "kv cache", p.cacheGpu(), p.cacheCpu(), p.cacheDisk());
        row(out, "activations", p.activationGpu(), p.activationCpu(), p.activationDisk());
        out.printf(Locale.ROOT, "  options          cpu-cache-compute %s, compress weight %s, compress cache %s%n",
                onOff(p.cpuCacheCompute()), onOff(p.compressWeight()), onOff(p.compressCache()));
        int l = w.model().layers();
        out.printf(Locale.ROOT, "  prefill          %.4g s per layer, %.1f s per block%n",
                pr.prefillSecondsPerLayer(), l * pr.prefillSecondsPerLayer());
        out.printf(Locale.ROOT, "  decode           %.4g s per layer per token, %.1f s per block%n",
                pr.decodeSecondsPerLayer(), l * (w.genLen() - 1) * pr.decodeSecondsPerLayer());
        out.printf(Locale.ROOT, "  throughput       %.4g tokens/s (%d sequences x %d tokens in %.1f s)%n",
                s.throughput(), p.blockSize(), w.genLen(), pr.totalSeconds());
        out.printf(Locale.ROOT, "  %-16s %10s %10s %14s%n", "memory (GB)", "peak", "capacity", "alpha x cap.");
        mem(out, "device", pr.peakDeviceBytes() / gib, hw.deviceMemoryBytes() / gib);
        mem(out, "host", pr.peakHostBytes() / gib, hw.hostMemoryBytes() / gib);
        mem(out, "disk", pr.diskBytes() / gib, hw.diskBytes() / gib);
        out.printf(Locale.ROOT, "  search           %d LPs in %.0f ms (one-time OR-Tools load %.0f ms); GB = 2^30 bytes%n",
                r.lpsSolved(), r.nanos() / 1e6, loadNanos / 1e6);
    }

    private void row(PrintWriter out, String what, double g, double c, double d) {
        out.printf(Locale.ROOT, "  %-16s %8.2f %8.2f %8.2f%n", what, g, c, d);
    }

    private void mem(PrintWriter out, String tier, double peak, double capacity) {
        out.printf(Locale.ROOT, "  %-16s %10.2f %10.2f %14.2f%n", tier, peak, capacity, alpha * capacity);
    }

    private static String onOff(boolean b) {
        return b ? "on" : "off";
    }

    private static String fmt(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }
}
