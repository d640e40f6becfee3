package io.flexstream.policy;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static io.flexstream.policy.LpVariable.CC;
import static io.flexstream.policy.LpVariable.CG;
import static io.flexstream.policy.LpVariable.CN;
import static io.flexstream.policy.LpVariable.HC;
import static io.flexstream.policy.LpVariable.HG;
import static io.flexstream.policy.LpVariable.HN;
import static io.flexstream.policy.LpVariable.T_GEN;
import static io.flexstream.policy.LpVariable.T_PRE;
import static io.flexstream.policy.LpVariable.WC;
import static io.flexstream.policy.LpVariable.WG;
import static io.flexstream.policy.LpVariable.WN;

/**
 * Time and memory of one block (gbs x nb sequences) as LINEAR functions of the placement shares, for a fixed (gbs, nb).
 * Times are per layer in SECONDS (prefill: the whole block once; decode: the whole block, one token), memory is peak
 * BYTES per tier. A max of overlapped terms becomes epigraph rows {@code T >= group} (FLEXGEN.md 3.5).
 *
 * <p>Two modes:
 * <ul>
 *   <li>{@link Mode#FLEXGEN} reproduces FlexGen's experimental cost model term for term (FLEXGEN.md 3.3-3.6), including
 *   its quirks, so the published search results can be checked: prefill {@code Tpre >= ctog + dtoc, gtoc + ctod, comp};
 *   decode {@code Tgen >= ctog + x} for x in (gtoc, dtoc, ctod, comp), i.e. the weight upload charged serially
 *   because FlexGen hides it behind one GPU batch only; decode context averaged as s + n/2; host attention with the
 *   0.1-floored efficiency factor; compression only as W/4; hg + hc = 1.</li>
 *   <li>{@link Mode#FLEXSTREAM} describes our engine, whose schedule spreads the next layer's weight prefetch over all nb
 *   GPU batches of the block. Each link (host to device, device to host, disk read, disk write) and the compute run
 *   concurrently, so both Tpre and Tgen are the max of the five terms (the paper's form). Bytes follow the engine's
 *   storage precision ({@link Calibration#elementBytes}: fp16, or fp32 on the CPU backend). Compression stores and
 *   moves weights and cache at {@link Calibration#compressedBytesPerElement} (0.28x of fp16) and costs dequantization
 *   time at {@link HardwareProfile#dequantizeElementsPerSecond}. Without attention delegation the off-device cache is moved to
 *   the device each token. Terms FlexGen leaves out: the LM head (vocab x hidden, as large as several layers of a
 *   small model) is counted, spread over the layers; and a GPU batch's matrix products never take less than streaming
 *   the layer's weights from device memory once ({@link HardwareProfile#weightStreamBytesPerSecond}), which is what
 *   makes small decode batches memory bound even when everything fits on the device. A third: a disk-resident
 *   sequence's cache moves in small O_DIRECT requests (a few KiB per token row), whose fixed latency
 *   ({@link HardwareProfile#diskReadRequestSeconds}, {@link HardwareProfile#diskWriteRequestSeconds}, and
 *   {@link HardwareProfile#diskBatchReadRequestSeconds} for a GPU batch's loads, which are in flight together) is
 *   counted per request as the engine issues them ({@link DiskCacheRequests}). A fourth: where the engine fuses a block's decode
 *   ({@link Calibration#fusedDecode}, the CPU backend), {@link #formulateFused} describes that corner of the placement
 *   space (cache and activations wholly on the device) with one weight stream per step for the whole block. A fifth:
 *   on the CPU backend ({@link Calibration#cacheDiskOnCompute}) a disk-resident cache's decode traffic is charged to
 *   the compute term, because the computing cores also serve its requests. The
 *   memory rows are FlexGen's with these byte sizes. {@code flexstream bench policy} checks the predictions against measured runs.</li>
 * </ul>
 */
public final class CostModel {

    public enum Mode { FLEXGEN, FLEXSTREAM }

    /**
     * Tunables of the FlexStream mode (the machine's own constants are in {@link HardwareProfile}).
     *
     * @param compressedBytesPerElement bytes per element of a 4-bit tensor: group 64, 32 bytes of codes + fp16 scale
     *                                  and min (4 bytes) per 64 elements = 0.5625, i.e. 0.28x of fp16
     * @param elementBytes              bytes per element of uncompressed weights, cache and activations as the
     *                                  engine stores them: 2 (fp16, the GPU backend) or 4 (fp32, the CPU backend)
     * @param fusedDecode               whether the engine computes a zig-zag block's decode step for all its GPU
     *                                  batches in one pass when the cache and activations are wholly on the device
     *                                  (the CPU backend does; see {@link #formulateFused})
     * @param cacheDiskOnCompute        whether a disk-resident KV cache's decode traffic (its bytes and its small
     *                                  requests, loads and stores) takes time from the compute instead of overlapping
     *                                  it. On the CPU backend the cores that compute also run the O_DIRECT requests
     *                                  (and, on a VM, the virtual disk behind them): with the cache 100% on disk, 64 x
     *                                  1 blocks of the OPT-125M shape decoded in 8.8 s where the same block in memory
     *                                  took 2.9 s, 5.9 s more, while the disk was busy for 5.2 s; the overlapped model
     *                                  predicted no extra time at all (bench policy, 2026-11-27). Large weight reads
     *                                  do overlap (5.3 s against a predicted 3.9 s in the same run), so only the
     *                                  cache's traffic is moved.
     */
    public record Calibration(double compressedBytesPerElement, int elementBytes, boolean fusedDecode,
                              boolean cacheDiskOnCompute) {
        public static final Calibration DEFAULT = new Calibration(36.0 / 64, 2, false, false);
        /**
         * The CPU backend keeps everything in fp32, fuses the decode of device-resident blocks, and serves the disk
         * cache's requests on its compute cores.
         */
        public static final Calibration FP32 = new Calibration(36.0 / 64, 4, true, true);

        public Calibration {
            if (!(compressedBytesPerElement > 0)) {
                throw new IllegalArgumentException("compressedBytesPerElement must be positive, got " + compressedBytesPerElement);
            }
            if (elementBytes != 2 && elementBytes != 4) {
                throw new IllegalArgumentException("elementBytes must be 2 (fp16) or 4 (fp32), got " + elementBytes);
            }
        }
    }

    /** FlexGen's default capacity relaxation (alpha_g = alpha_c = alpha_n = 0.8). */
    public static final double DEFAULT_ALPHA = 0.8;

    private final HardwareProfile hw;
    private final Mode mode;
    private final double alpha;
    private final Calibration calibration;

    /**
     * @param alpha capacity relaxation: every tier's usable bytes are alpha x capacity (larger is more aggressive;
     *              FlexGen suggests 1.2 when evaluating a fixed policy)
     */
    public CostModel(HardwareProfile hw, Mode mode, double alpha, Calibration calibration) {
        if (!(alpha > 0)) throw new IllegalArgumentException("alpha must be positive, got " + alpha);
        this.hw = hw;
        this.mode = mode;
        this.alpha = alpha;
        this.calibration = calibration;
    }

    public CostModel(HardwareProfile hw, Mode mode) {
        this(hw, mode, DEFAULT_ALPHA, Calibration.DEFAULT);
    }

    public HardwareProfile hardware() {
        return hw;
    }

    public Mode mode() {
        return mode;
    }

    public double alpha() {
        return alpha;
    }

    public CostModel withAlpha(double a) {
        return new CostModel(hw, mode, a, calibration);
    }

    /** The LP rows (time, memory, placement; no pins) and objective for one (gbs, nb). */
    public Formulation formulate(Workload w, int gbs, int nb) {
        return formulate(w, gbs, nb, false);
    }

    /**
     * Whether the engine this model describes has a fused decode for blocks of {@code nb} GPU batches: FlexStream
     * mode, a calibration that says so, and more than one GPU batch.
     */
    public boolean fusesDecode(int nb) {
        return mode == Mode.FLEXSTREAM && calibration.fusedDecode() && nb > 1;
    }

    /**
     * The LP of the fused decode: the cache and activations are pinned wholly to the device (placement rows CG = 1,
     * HG = 1), and a decode step multiplies the whole block's gbs x nb rows by each layer in one pass, so the block
     * pays the floor of streaming a layer's weights from device memory once per step instead of once per GPU batch,
     * and its temporaries are sized for the block. Prefill is unchanged (the engine runs it per GPU batch). The search
     * solves it beside {@link #formulate} and keeps the better.
     *
     * @throws IllegalStateException when {@link #fusesDecode} is false for {@code nb}
     */
    public Formulation formulateFused(Workload w, int gbs, int nb) {
        if (!fusesDecode(nb)) {
            throw new IllegalStateException("no fused decode for " + nb + " GPU batch(es) in " + mode + " mode with "
                    + calibration);
        }
        return formulate(w, gbs, nb, true);
    }

    private Formulation formulate(Workload w, int gbs, int nb, boolean fused) {
        if (gbs <= 0 || nb <= 0) throw new IllegalArgumentException("gbs and nb must be positive, got " + gbs + ", " + nb);
        Sizes z = sizes(w, gbs, nb);
        Map<String, LinearForm> pre = mode == Mode.FLEXGEN ? flexGenPrefill(z) : flexStreamPrefill(z, w);
        Map<String, LinearForm> gen = mode == Mode.FLEXGEN ? flexGenDecode(z) : flexStreamDecode(z, w, fused);

        List<LpConstraint> rows = new ArrayList<>();
        if (mode == Mode.FLEXGEN) {
            rows.add(LpConstraint.time("prefill: host->device + disk->host", T_PRE, pre.get("ctog").plus(pre.get("dtoc"))));
            rows.add(LpConstraint.time("prefill: device->host + host->disk", T_PRE, pre.get("gtoc").plus(pre.get("ctod"))));
            rows.add(LpConstraint.time("prefill: compute", T_PRE, pre.get("comp")));
            for (String x : List.of("gtoc", "dtoc", "ctod", "comp")) {
                rows.add(LpConstraint.time("decode: host->device + " + x, T_GEN, gen.get("ctog").plus(gen.get(x))));
            }
        } else {
            pre.forEach((k, f) -> rows.add(LpConstraint.time("prefill: " + k, T_PRE, f)));
            gen.forEach((k, f) -> rows.add(LpConstraint.time("decode: " + k, T_GEN, f)));
        }
        memoryRows(z, w, rows, fused);
        if (fused) {
            rows.add(LpConstraint.equal("fused decode: cache on the device (cg = 1)", LpConstraint.Kind.PLACEMENT,
                    LinearForm.of(CG, 1), 1));
            rows.add(LpConstraint.equal("fused decode: activations on the device (hg = 1)",
                    LpConstraint.Kind.PLACEMENT, LinearForm.of(HG, 1), 1));
        }
        rows.add(LpConstraint.equal("weight shares sum to 1", LpConstraint.Kind.PLACEMENT, LinearForm.sum(1, WG, WC, WN), 1));
        rows.add(LpConstraint.equal("cache shares sum to 1", LpConstraint.Kind.PLACEMENT, LinearForm.sum(1, CG, CC, CN), 1));
        rows.add(LpConstraint.equal("activation shares sum to 1", LpConstraint.Kind.PLACEMENT, LinearForm.sum(1, HG, HC, HN), 1));
        // The runtime (FlexGen's, and ours) keeps activations on device or host only.
        rows.add(LpConstraint.equal("activations on device or host (hg + hc = 1)", LpConstraint.Kind.PLACEMENT,
                LinearForm.sum(1, HG, HC), 1));

        double l = w.model().layers();
        LinearForm objective = LinearForm.of(T_PRE, l / z.bls).plus(T_GEN, l * (w.genLen() - 1) / z.bls);
        return new Formulation(w, gbs, nb, List.copyOf(rows), objective, pre, gen);
    }

    /**
     * Byte and FLOP quantities of one (workload, gbs, nb); doubles because they exceed 2^31 and enter an LP. The
     * formulas are written for fp16 (FlexGen's "2 s h1" hidden bytes, "4 s h1" K+V bytes); the factors rescale them to
     * the bytes actually stored: {@code cacheFactor} and {@code hiddenFactor} multiply fp16 cache and activation bytes,
     * {@code weightBytes} is one layer's weights as stored.
     */
    private record Sizes(double s, double n, double h1, double h2, double nh, double l, double gbs, double bls,
                         double weightBytes, double cacheFactor, double hiddenFactor) {

        /** Bytes of one token's keys (or values) of one layer as stored: a row of the cache. */
        long cacheRowBytes() {
            return Math.round(2 * h1 * cacheFactor);
        }

        /** Average decode context, FlexGen's s + n/2. */
        double ctx() {
            return s + n / 2;
        }
    }

    // ---- FlexGen mode: FLEXGEN.md 3.3 and 3.4, term for term -------------------------------------------------------

    private Sizes sizes(Workload w, int gbs, int nb) {
        double fp16Weights = w.model().layerWeightBytes();
        if (mode == Mode.FLEXGEN) {
            // FlexGen reflects compression only as W/4, and nothing else.
            return new Sizes(w.promptLen(), w.genLen(), w.model().hidden(), w.model().ffn(), w.model().heads(),
                    w.model().layers(), gbs, (double) gbs * nb, fp16Weights * (w.compressWeight() ? 0.25 : 1), 1, 1);
        }
        double eb = calibration.elementBytes();
        double q = calibration.compressedBytesPerElement();
        // The LM head (tied to the token table: vocab x hidden, stored uncompressed) is loaded and multiplied every
        // step like a layer; it is spread over the l layers here so that the per-layer max keeps its linear form.
        double headBytesPerLayer = (double) w.model().vocab() * w.model().hidden() * eb / w.model().layers();
        return new Sizes(w.promptLen(), w.genLen(), w.model().hidden(), w.model().ffn(), w.model().heads(),
                w.model().layers(), gbs, (double) gbs * nb,
                fp16Weights * (w.compressWeight() ? q : eb) / 2 + headBytesPerLayer,
                (w.compressCache() ? q : eb) / 2, eb / 2);
    }

    private Map<String, LinearForm> flexGenPrefill(Sizes z) {
        double hidden = 2 * z.s * z.h1 * z.bls;              // one layer's activations of the block, bytes
        double cacheNew = 4 * (z.s + 1) * z.h1 * z.bls;      // K and V of the prompt (FlexGen counts s + 1 rows)
        Map<String, LinearForm> t = new LinkedHashMap<>();
        t.put("ctog", LinearForm.sum(z.weightBytes / hw.hostToDevice(), WC, WN)
                .plus(LinearForm.sum(hidden / hw.hostToDevice(), HC, HN)));
        t.put("gtoc", LinearForm.sum(cacheNew / hw.deviceToHostCache(), CC, CN)
                .plus(LinearForm.sum(hidden / hw.deviceToHostHidden(), HC, HN)));
        t.put("dtoc", LinearForm.of(WN, z.weightBytes / hw.diskToHost()).plus(HN, hidden / hw.diskToHost()));
        t.put("ctod", LinearForm.of(CN, cacheNew / hw.hostToDiskCachePrefill()).plus(HN, hidden / hw.hostToDiskHiddenPrefill()));
        t.put("comp", LinearForm.constant(prefillCompute(z)));
        return t;
    }

    private Map<String, LinearForm> flexGenDecode(Sizes z) {
        double hidden = 2 * z.h1 * z.bls;
        double cacheRead = 4 * z.bls * z.ctx() * z.h1;       // K and V of the average context, bytes
        Map<String, LinearForm> t = new LinkedHashMap<>();
        t.put("ctog", LinearForm.sum(z.weightBytes / hw.hostToDevice(), WC, WN)
                .plus(LinearForm.sum(hidden / hw.hostToDevice(), HC, HN)));
        t.put("gtoc", LinearForm.sum(hidden / hw.deviceToHostHidden(), HC, HN));
        // FlexGen discounts disk weight reads to 95% of the disk bandwidth.
        t.put("dtoc", LinearForm.of(CN, cacheRead / hw.diskToHost()).plus(HN, hidden / hw.diskToHost())
                .plus(WN, z.weightBytes / (0.95 * hw.diskToHost())));
        t.put("ctod", LinearForm.of(CN, 4 * z.bls * z.h1 / hw.hostToDiskDecode()).plus(HN, hidden / hw.hostToDiskDecode()));
        double cpuRate = hw.hostAttentionFlops() * hw.hostAttentionEfficiency((int) z.gbs, (int) z.h1);
        t.put("comp", LinearForm.constant(z.bls * (8 * z.h1 * z.h1 + 4 * z.h1 * z.h2) / hw.matmulFlopsDecode())
                .plus(CG, cacheRead / hw.attentionFlopsDecode())
                .plus(LinearForm.sum(cacheRead / cpuRate, CC, CN)));
        return t;
    }

    private double prefillCompute(Sizes z) {
        return z.bls * (8 * z.s * z.h1 * z.h1 + 4 * z.s * z.h1 * z.h2) / hw.matmulFlopsPrefill()
                + 4 * z.bls * z.s * z.s * z.h1 / hw.attentionFlopsPrefill();
    }

    // ---- FlexStream mode --------------------------------------------------------------------------------------------

    private Map<String, LinearForm> flexStreamPrefill(Sizes z, Workload w) {
        double hidden = 2 * z.s * z.h1 * z.bls * z.hiddenFactor;
        double cacheNew = 4 * z.s * z.h1 * z.bls * z.cacheFactor;
        double dequant = (w.compressWeight() ? z.h1 * (4 * z.h1 + 2 * z.h2) : 0)     // one layer's weight elements
                + (w.compressCache() ? 2 * z.s * z.h1 * z.bls : 0);                  // quantizing the new K and V
        Map<String, LinearForm> t = new LinkedHashMap<>();
        t.put("host->device", LinearForm.sum(z.weightBytes / hw.hostToDevice(), WC, WN)
                .plus(LinearForm.sum(hidden / hw.hostToDevice(), HC, HN)));
        t.put("device->host", LinearForm.sum(cacheNew / hw.deviceToHostCache(), CC, CN)
                .plus(LinearForm.sum(hidden / hw.deviceToHostHidden(), HC, HN)));
        t.put("disk->host", LinearForm.of(WN, z.weightBytes / hw.diskToHost()).plus(HN, hidden / hw.diskToHost()));
        t.put("host->disk", LinearForm.of(CN, cacheNew / hw.hostToDiskCachePrefill()
                        + z.bls * requestSeconds(DiskCacheRequests.prefill((int) z.s, z.cacheRowBytes())))
                .plus(HN, hidden / hw.hostToDiskHiddenPrefill()));
        t.put("compute", LinearForm.constant(flexStreamPrefillCompute(z, w) + dequant / hw.dequantizeElementsPerSecond()));
        return t;
    }

    /**
     * One layer's prefill of the block: per GPU batch, the matrix products of its gbs x s rows (at least the time to
     * stream the layer's weights once), the causal attention, and the layer's share of the head, which runs on the
     * last position of each sequence only (gbs rows: a decode-shaped product).
     */
    private double flexStreamPrefillCompute(Sizes z, Workload w) {
        double nb = z.bls / z.gbs;
        double layerFlops = z.gbs * z.s * (8 * z.h1 * z.h1 + 4 * z.h1 * z.h2);
        double headFlops = z.gbs * 2.0 * w.model().vocab() * z.h1 / z.l;
        double perBatch = Math.max(layerFlops / hw.matmulFlopsPrefill() + headFlops / hw.matmulFlopsDecode(),
                z.weightBytes / hw.weightStreamBytesPerSecond());
        return nb * perBatch + 4 * z.bls * z.s * z.s * z.h1 / hw.attentionFlopsPrefill();
    }

    /**
     * One layer's decode matrix products for the block: per GPU batch, gbs rows through the layer and its share of
     * the head, but never faster than streaming the layer's weights from device memory once. That floor is what a
     * larger GPU batch amortises when the whole model sits on the device. Fused, the block's rows go through in one
     * pass, so the floor is paid once per step for the block.
     */
    private double flexStreamDecodeMatmul(Sizes z, Workload w, boolean fused) {
        double nb = z.bls / z.gbs;
        double flops = z.gbs * (8 * z.h1 * z.h1 + 4 * z.h1 * z.h2 + 2.0 * w.model().vocab() * z.h1 / z.l);
        double stream = z.weightBytes / hw.weightStreamBytesPerSecond();
        if (fused) {
            return Math.max(nb * flops / hw.matmulFlopsDecode(), stream);
        }
        return nb * Math.max(flops / hw.matmulFlopsDecode(), stream);
    }

    private Map<String, LinearForm> flexStreamDecode(Sizes z, Workload w, boolean fused) {
        boolean delegate = w.cpuCacheCompute();
        double hidden = 2 * z.h1 * z.bls * z.hiddenFactor;
        double cacheRead = 4 * z.bls * z.ctx() * z.h1 * z.cacheFactor;   // bytes of K and V read per token
        double cacheNew = 4 * z.bls * z.h1 * z.cacheFactor;              // bytes of the new token's K and V
        double attnFlops = 4 * z.bls * z.ctx() * z.h1;
        LinearForm h2d = LinearForm.sum(z.weightBytes / hw.hostToDevice(), WC, WN)
                .plus(LinearForm.sum(hidden / hw.hostToDevice(), HC, HN));
        LinearForm d2h = LinearForm.sum(hidden / hw.deviceToHostHidden(), HC, HN);
        LinearForm comp = LinearForm.constant(flexStreamDecodeMatmul(z, w, fused));
        if (delegate) {
            double cpuRate = hw.hostAttentionFlops() * hw.hostAttentionEfficiency((int) z.gbs, (int) z.h1);
            comp = comp.plus(CG, attnFlops / hw.attentionFlopsDecode()).plus(LinearForm.sum(attnFlops / cpuRate, CC, CN));
        } else {
            // Off-device cache comes to the device each token and the new K/V goes back.
            h2d = h2d.plus(LinearForm.sum(cacheRead / hw.hostToDevice(), CC, CN));
            d2h = d2h.plus(LinearForm.sum(cacheNew / hw.deviceToHostCache(), CC, CN));
            comp = comp.plus(attnFlops / hw.attentionFlopsDecode());
        }
        double dequant = (w.compressWeight() ? z.h1 * (4 * z.h1 + 2 * z.h2) : 0)
                + (w.compressCache() ? 2 * z.bls * z.ctx() * z.h1 : 0);
        comp = comp.plus(dequant / hw.dequantizeElementsPerSecond());
        Map<String, LinearForm> t = new LinkedHashMap<>();
        t.put("host->device", h2d);
        t.put("device->host", d2h);
        // A disk-resident sequence's cache moves in requests of a few KiB (DiskCacheRequests): each one's fixed
        // latency is charged on top of the bytes at the link's bandwidth, loads on the read side and stores (with
        // their read-modify-write of edge blocks) on the write side, which run on separate I/O threads.
        // A load issues the whole GPU batch's reads at once on the disk tier's reader pool, so they are charged at
        // the profile's time per read in such a batch; a store writes one sequence after another.
        double loadLatency = z.bls * DiskCacheRequests.decodeLoad((int) z.s, (int) z.n, z.cacheRowBytes()).reads()
                * hw.diskBatchReadRequestSeconds();
        double storeLatency = z.bls * requestSeconds(DiskCacheRequests.decodeStore((int) z.s, (int) z.n,
                z.cacheRowBytes()));
        t.put("disk->host", LinearForm.of(CN, cacheRead / hw.diskToHost() + loadLatency)
                .plus(HN, hidden / hw.diskToHost())
                .plus(WN, z.weightBytes / hw.diskToHost()));
        t.put("host->disk", LinearForm.of(CN, cacheNew / hw.hostToDiskDecode() + storeLatency)
                .plus(HN, hidden / hw.hostToDiskDecode()));
        if (calibration.cacheDiskOnCompute()) {
            comp = comp.plus(CN, cacheRead / hw.diskToHost() + loadLatency + cacheNew / hw.hostToDiskDecode()
                    + storeLatency);
        }
        t.put("compute", comp);
        return t;
    }

    /** Fixed time of the requests (bandwidth excluded): reads and writes at the profile's per-request latency. */
    private double requestSeconds(DiskCacheRequests.Counts c) {
        return c.reads() * hw.diskReadRequestSeconds() + c.writes() * hw.diskWriteRequestSeconds();
    }

    // ---- Peak memory (FLEXGEN.md 3.6; the FlexStream mode uses its own byte sizes) -------------------------------------

    private void memoryRows(Sizes z, Workload w, List<LpConstraint> rows, boolean fused) {
        double s = z.s, n = z.n, h1 = z.h1, h2 = z.h2, nh = z.nh, l = z.l, gbs = z.gbs, bls = z.bls;
        double wb = z.weightBytes;
        double cf = z.cacheFactor;      // 1 in FlexGen mode: its memory rows ignore cache compression
        double hf = z.hiddenFactor;     // 1 in FlexGen mode
        double cacheAll = 4 * (s + n) * h1 * bls * l * cf;                // the whole block's KV cache, all layers
        boolean deviceAttention = mode == Mode.FLEXSTREAM && !w.cpuCacheCompute();

        // Device, prefill: resident shares + double-buffered off-device weights + one GPU batch's activations + temporaries.
        double interP = hf * (8 * gbs * s * h1 + gbs * (2 * s * h1 + 2 * nh * s * s) + 2 * gbs * s * h1
                + 4 * gbs * s * h1 + 2 * gbs * s * h2 + 2 * gbs * s * h1);
        LinearForm gpuPre = LinearForm.of(WG, wb * l).plus(HG, hf * 2 * s * h1 * bls).plus(CG, cacheAll)
                .plus(2 * wb).plus(WG, -2 * wb)
                .plus(hf * 2 * s * h1 * gbs).plus(HG, -hf * 2 * s * h1 * gbs)
                .plus(interP);
        rows.add(LpConstraint.memory("GPU memory in prefill", gpuPre, hw.deviceMemoryBytes(), alpha));

        // Device, decode. FlexGen charges attention temporaries and a cache working copy only for the device share.
        // A fused decode step holds the layer temporaries of the whole block at once.
        double sn = s + n;
        double tempRows = fused ? bls : gbs;
        LinearForm interG = LinearForm.constant(hf * (8 * tempRows * h1 + 4 * tempRows * h1 + 2 * tempRows * h2 + 2 * tempRows * h1))
                .plus(CG, hf * (gbs * (2 * h1 + 2 * sn * h1 + 2 * nh * sn) + gbs * (2 * sn * h1 + 2 * h1)));
        LinearForm gpuGen = LinearForm.of(WG, wb * l).plus(HG, hf * 2 * h1 * bls).plus(CG, cacheAll)
                .plus(2 * wb).plus(WG, -2 * wb)
                .plus(hf * 2 * h1 * gbs).plus(HG, -hf * 2 * h1 * gbs)
                .plus(CG, 4 * gbs * sn * h1 * cf)
                .plus(interG);
        if (deviceAttention) {
            // Without delegation the off-device cache of the current and the next GPU batch sits on the device.
            gpuGen = gpuGen.plus(LinearForm.sum(2 * 4 * gbs * sn * h1 * cf, CC, CN))
                    .plus(LinearForm.sum(hf * gbs * (2 * sn * h1 + 2 * nh * sn), CC, CN));
        }
        rows.add(LpConstraint.memory("GPU memory in decode", gpuGen, hw.deviceMemoryBytes(), alpha));

        // Host, prefill: resident shares + a staging copy of the off-device weights and one batch's activations.
        double cachePromptHost = 4 * s * h1 * bls * l * cf;
        LinearForm cpuPre = LinearForm.of(WC, wb * l).plus(HC, hf * 2 * s * h1 * bls).plus(CC, cachePromptHost)
                .plus(wb).plus(WG, -wb)
                .plus(hf * 2 * s * h1 * gbs).plus(HG, -hf * 2 * s * h1 * gbs);
        rows.add(LpConstraint.memory("CPU memory in prefill", cpuPre, hw.hostMemoryBytes(), alpha));

        // Host, decode: resident shares + staging for disk weights, disk activations and disk cache of one batch
        // + the delegated attention's scores and output.
        LinearForm cpuGen = LinearForm.of(WC, wb * l).plus(HC, hf * 2 * h1 * bls).plus(CC, cacheAll)
                .plus(WN, wb).plus(HN, hf * 4 * h1 * gbs).plus(CN, 8 * sn * h1 * gbs * cf)
                .plus(hf * (2 * nh * sn * gbs + 2 * h1 * gbs));
        rows.add(LpConstraint.memory("CPU memory in decode", cpuGen, hw.hostMemoryBytes(), alpha));

        LinearForm disk = LinearForm.of(WN, wb * l).plus(HN, hf * 2 * s * h1 * bls).plus(CN, cacheAll);
        rows.add(LpConstraint.memory("disk", disk, hw.diskBytes(), alpha));
    }
}
