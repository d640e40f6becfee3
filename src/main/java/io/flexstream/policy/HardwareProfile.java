package io.flexstream.policy;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.lang.reflect.RecordComponent;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The machine constants the cost model needs. All values are in base units: BYTES, BYTES PER SECOND, FLOP PER SECOND
 * (a multiply-add counts as 2 FLOP), ELEMENTS PER SECOND. FlexGen's constants are quoted in GB/s with GB = 2^30 bytes
 * and TFLOPS with T = 10^12; {@link #GIB} and {@link #TERA} convert.
 *
 * <p>"device" is the compute device tier (the GPU, or the device budget of the CPU backend), "host" is host memory,
 * "disk" is the file tier read and written with O_DIRECT. FlexGen fitted its bandwidths per traffic kind (the device to
 * host link is ~5x slower for cache than for hidden states in its fit), so the profile keeps them separate.
 *
 * @param name                         label, e.g. {@code t4-flexgen}
 * @param description                  where the numbers come from
 * @param deviceMemoryBytes            device tier capacity
 * @param hostMemoryBytes              host tier capacity
 * @param diskBytes                    disk tier capacity
 * @param hostToDevice                 host to device, weights, hidden states and cache (FlexGen ctog_bdw)
 * @param deviceToHostCache            device to host, KV cache (gtoc_bdw_cache)
 * @param deviceToHostHidden           device to host, hidden states (gtoc_bdw_hidden)
 * @param diskToHost                   disk to host with O_DIRECT (dtoc_bdw)
 * @param hostToDiskCachePrefill       host to disk, KV cache written in prefill (ctod_bdw_cache_p)
 * @param hostToDiskHiddenPrefill      host to disk, hidden states in prefill (ctod_bdw_hidden_p)
 * @param hostToDiskDecode             host to disk, anything written in decode (ctod_bdw_g)
 * @param matmulFlopsPrefill           device GEMM rate at prefill shapes (mm_flops_p)
 * @param matmulFlopsDecode            device GEMM rate at decode shapes (mm_flops_g)
 * @param attentionFlopsPrefill        device batched GEMM (attention) rate in prefill (bmm_flops_p)
 * @param attentionFlopsDecode         device batched GEMM (attention) rate in decode (bmm_flops_g)
 * @param hostAttentionFlops           host attention rate for delegated decode attention (cpu_flops)
 * @param cpuCorrectionC1              FlexGen's c1 of the host attention efficiency factor
 * @param cpuCorrectionC2              FlexGen's c2 (small-batch penalty)
 * @param cpuCorrectionC3              FlexGen's c3 (small-hidden penalty)
 * @param dequantizeElementsPerSecond  4-bit to fp16 dequantization rate on the device; FlexStream cost mode only
 * @param weightStreamBytesPerSecond   how fast a linear with ONE input row reads its weights from device memory (bytes
 *                                     of weights per second): the floor of a linear's time however few rows it has,
 *                                     which is what makes small decode batches memory bound; FlexStream cost mode
 *                                     only
 * @param diskReadRequestSeconds       fixed time of one small O_DIRECT read request of the disk tier (a 4 KiB block),
 *                                     beyond its bytes at {@code diskToHost}; FlexStream cost mode only
 * @param diskWriteRequestSeconds      fixed time of one small O_DIRECT write request of the disk tier (a 4 KiB
 *                                     block), beyond its bytes at the host to disk bandwidth; FlexStream cost mode only
 * @param diskBatchReadRequestSeconds  time per small O_DIRECT read when the disk tier has many of them in flight at
 *                                     once on its reader pool, as the engine loads a GPU batch's disk-resident KV
 *                                     cache (wall time of the batch over its requests); files without the key take
 *                                     {@code diskReadRequestSeconds}; FlexStream cost mode only
 */
public record HardwareProfile(String name, String description,
                              long deviceMemoryBytes, long hostMemoryBytes, long diskBytes,
                              double hostToDevice, double deviceToHostCache, double deviceToHostHidden,
                              double diskToHost,
                              double hostToDiskCachePrefill, double hostToDiskHiddenPrefill, double hostToDiskDecode,
                              double matmulFlopsPrefill, double matmulFlopsDecode,
                              double attentionFlopsPrefill, double attentionFlopsDecode,
                              double hostAttentionFlops,
                              double cpuCorrectionC1, double cpuCorrectionC2, double cpuCorrectionC3,
                              double dequantizeElementsPerSecond, double weightStreamBytesPerSecond,
                              double diskReadRequestSeconds, double diskWriteRequestSeconds,
                              double diskBatchReadRequestSeconds) {

    /** FlexGen's GB (utils.py): 2^30 bytes. */
    public static final double GIB = 1L << 30;
    /** FlexGen's T of TFLOPS: 10^12. */
    public static final double TERA = 1e12;

    /**
     * Values for keys that profile files written before the key existed lack, so those files keep loading. The disk
     * request times are what {@code flexstream profile} measured on the 2-core development VM (virtio disk, O_DIRECT,
     * 4 KiB requests, load 2-4): 29-56 us per read and 35-75 us per write over nine runs, about 40 us each; a local
     * NVMe drive is faster, a network disk slower. Every other key is required.
     */
    static final Map<String, Double> DEFAULTS_FOR_OLDER_FILES = Map.of(
            "diskReadRequestSeconds", 40e-6,
            "diskWriteRequestSeconds", 40e-6);

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES);

    public HardwareProfile {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("hardware profile: name must not be blank");
        positive(name, "deviceMemoryBytes", deviceMemoryBytes);
        positive(name, "hostMemoryBytes", hostMemoryBytes);
        if (diskBytes < 0) throw new IllegalArgumentException("hardware profile " + name + ": diskBytes must be >= 0");
        positive(name, "hostToDevice", hostToDevice);
        positive(name, "deviceToHostCache", deviceToHostCache);
        positive(name, "deviceToHostHidden", deviceToHostHidden);
        positive(name, "diskToHost", diskToHost);
        positive(name, "hostToDiskCachePrefill", hostToDiskCachePrefill);
        positive(name, "hostToDiskHiddenPrefill", hostToDiskHiddenPrefill);
        positive(name, "hostToDiskDecode", hostToDiskDecode);
        positive(name, "matmulFlopsPrefill", matmulFlopsPrefill);
        positive(name, "matmulFlopsDecode", matmulFlopsDecode);
        positive(name, "attentionFlopsPrefill", attentionFlopsPrefill);
        positive(name, "attentionFlopsDecode", attentionFlopsDecode);
        positive(name, "hostAttentionFlops", hostAttentionFlops);
        positive(name, "dequantizeElementsPerSecond", dequantizeElementsPerSecond);
        positive(name, "weightStreamBytesPerSecond", weightStreamBytesPerSecond);
        notNegative(name, "diskReadRequestSeconds", diskReadRequestSeconds);
        notNegative(name, "diskWriteRequestSeconds", diskWriteRequestSeconds);
        notNegative(name, "diskBatchReadRequestSeconds", diskBatchReadRequestSeconds);
    }

    private static void notNegative(String profile, String key, double v) {
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException("hardware profile " + profile + ": " + key + " must be a finite number"
                    + " >= 0 (seconds), got " + v);
        }
    }

    private static void positive(String profile, String key, double v) {
        if (!(v > 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException("hardware profile " + profile + ": " + key + " must be a positive finite number, got " + v);
        }
    }

    /**
     * A built-in profile by name (resource {@code /io/flexstream/policy/hardware/NAME.json}) or a JSON file path. Names
     * are tried first; anything containing a path separator or ending in {@code .json} is read as a file.
     */
    public static HardwareProfile load(String nameOrFile) {
        boolean looksLikePath = nameOrFile.contains("/") || nameOrFile.endsWith(".json");
        if (!looksLikePath) {
            try (InputStream in = HardwareProfile.class.getResourceAsStream("hardware/" + nameOrFile + ".json")) {
                if (in != null) return fromTree(JSON.readTree(in));
            } catch (IOException e) {
                throw new UncheckedIOException("built-in hardware profile " + nameOrFile + " is unreadable", e);
            }
        }
        Path file = Path.of(nameOrFile);
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("hardware profile '" + nameOrFile + "' is neither a built-in name"
                    + " (t4-flexgen, cpu-2core-estimate)"
                    + " nor a readable JSON file");
        }
        return read(file);
    }

    public static HardwareProfile read(Path file) {
        try {
            return fromTree(JSON.readTree(file.toFile()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read hardware profile " + file + ": " + e.getMessage(), e);
        }
    }

    /** Binds a parsed profile, first filling in {@link #DEFAULTS_FOR_OLDER_FILES} for keys the file lacks. */
    private static HardwareProfile fromTree(JsonNode tree) throws IOException {
        if (!(tree instanceof ObjectNode object)) {
            throw new IOException("a hardware profile is a JSON object, got " + tree.getNodeType());
        }
        DEFAULTS_FOR_OLDER_FILES.forEach((key, value) -> {
            if (!object.has(key)) object.put(key, value);
        });
        // Files from before batched reads were profiled: charge a batch's reads as if issued one after another.
        if (!object.has("diskBatchReadRequestSeconds")) {
            object.set("diskBatchReadRequestSeconds", object.get("diskReadRequestSeconds"));
        }
        return JSON.treeToValue(object, HardwareProfile.class);
    }

    public void write(Path file) {
        try {
            JSON.writeValue(file.toFile(), this);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write hardware profile " + file, e);
        }
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The same machine with other tier capacities (e.g. FlexGen's evaluation of fixed policies with a 16 GB GPU). */
    public HardwareProfile withCapacities(long deviceBytes, long hostBytes, long disk) {
        return new HardwareProfile(name, description, deviceBytes, hostBytes, disk, hostToDevice, deviceToHostCache,
                deviceToHostHidden, diskToHost, hostToDiskCachePrefill, hostToDiskHiddenPrefill, hostToDiskDecode,
                matmulFlopsPrefill, matmulFlopsDecode, attentionFlopsPrefill, attentionFlopsDecode, hostAttentionFlops,
                cpuCorrectionC1, cpuCorrectionC2, cpuCorrectionC3, dequantizeElementsPerSecond,
                weightStreamBytesPerSecond, diskReadRequestSeconds, diskWriteRequestSeconds,
                diskBatchReadRequestSeconds);
    }

    /**
     * The same machine with another disk read bandwidth, e.g. the rate the disk tier delivered during a run: on the
     * shared VM the disk re-read at 1.3 GB/s in one minute and 3.5 GB/s in the next, so a run's own rate tells a
     * model error from a disk that changed speed.
     */
    public HardwareProfile withDiskToHost(double bytesPerSecond) {
        return new HardwareProfile(name, description, deviceMemoryBytes, hostMemoryBytes, diskBytes, hostToDevice,
                deviceToHostCache, deviceToHostHidden, bytesPerSecond, hostToDiskCachePrefill, hostToDiskHiddenPrefill,
                hostToDiskDecode, matmulFlopsPrefill, matmulFlopsDecode, attentionFlopsPrefill, attentionFlopsDecode,
                hostAttentionFlops, cpuCorrectionC1, cpuCorrectionC2, cpuCorrectionC3, dequantizeElementsPerSecond,
                weightStreamBytesPerSecond, diskReadRequestSeconds, diskWriteRequestSeconds,
                diskBatchReadRequestSeconds);
    }

    /**
     * One profile from several of the same machine: every number is the median of theirs (the mean of the middle two
     * for an even count). On a shared VM the disk and the cores change speed from minute to minute (the disk re-read
     * 1.3 GB/s in one profile and 3.6 GB/s in another two minutes apart), so profiles taken before, between and after
     * a benchmark's runs describe the hardware those runs met better than any one of them.
     */
    public static HardwareProfile median(String name, String description, List<HardwareProfile> profiles) {
        if (profiles.isEmpty()) {
            throw new IllegalArgumentException("the median of no hardware profiles is undefined");
        }
        RecordComponent[] components = HardwareProfile.class.getRecordComponents();
        Object[] values = new Object[components.length];
        Class<?>[] types = new Class<?>[components.length];
        try {
            for (int i = 0; i < components.length; i++) {
                RecordComponent c = components[i];
                types[i] = c.getType();
                double[] v = new double[profiles.size()];
                for (int j = 0; j < v.length; j++) {
                    Object value = c.getAccessor().invoke(profiles.get(j));
                    v[j] = value instanceof Number n ? n.doubleValue() : Double.NaN;
                }
                values[i] = switch (c.getName()) {
                    case "name" -> name;
                    case "description" -> description;
                    default -> types[i] == long.class ? (Object) Math.round(medianOf(v)) : (Object) medianOf(v);
                };
            }
            return HardwareProfile.class.getDeclaredConstructor(types).newInstance(values);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot combine hardware profiles", e);
        }
    }

    private static double medianOf(double[] v) {
        double[] sorted = v.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /**
     * FlexGen's host-attention efficiency: {@code max(0.1, 1 + c1 a b - c2 a - c3 b)} with {@code a = max(0,
     * log2(64/gbs))} and {@code b = max(0, log2(4096/h1))}; small batches and small hidden sizes use the host's FLOPs
     * less well. The 0.1 floor keeps the rate positive.
     */
    public double hostAttentionEfficiency(int gpuBatchSize, int hidden) {
        double a = Math.max(0, log2(64.0 / gpuBatchSize));
        double b = Math.max(0, log2(4096.0 / hidden));
        return Math.max(0.1, 1 + cpuCorrectionC1 * a * b - cpuCorrectionC2 * a - cpuCorrectionC3 * b);
    }

    private static double log2(double x) {
        return Math.log(x) / Math.log(2);
    }
}
