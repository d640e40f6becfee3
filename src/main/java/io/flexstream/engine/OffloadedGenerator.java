package io.flexstream.engine;

import io.flexstream.kernel.Kernels;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.model.tokenizer.Gpt2Tokenizer;
import io.flexstream.quant.QuantizedAttention;
import io.flexstream.quant.QuantizedLinear;
import io.flexstream.tier.MemoryTier;
import io.flexstream.tier.Sizes;
import io.flexstream.tier.TierKind;
import io.flexstream.tier.Tiers;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * FlexGen's offloading engine: weights, KV cache and activations spread over the device, host and disk tiers by a
 * {@link Placement}, and blocks of gbs x nb sequences walked by the zig-zag (or row) schedule with transfers on I/O
 * threads overlapping compute. Any number of prompts: they are sorted by length and cut into blocks, the last one
 * partial. Produces the same tokens as {@link OptGenerator} for every placement and schedule.
 */
public final class OffloadedGenerator implements Generator {

    private final OptConfig config;
    private final Gpt2Tokenizer tokenizer;
    private final Kernels kernels;
    private final Placement placement;
    private final Tiers tiers;
    private final EngineOptions options;
    private final String modelName;
    private final ScheduleTrace trace;
    private final WeightStore weights;
    private QuantizedLinear quantized;
    private QuantizedAttention cacheAttention; // null unless the KV cache is compressed
    private final MemorySegment[] weightBuffers = new MemorySegment[2];
    private final List<MemoryTier.Buffer> buffers = new ArrayList<>();
    private final ExecutorService io;
    private final ExecutorService weightIo;
    private final AutoCloseable[] owned;
    private long[][] lastBlockBytes = new long[2][3];

    /**
     * Places {@code source}'s weights on the tiers (the source may be dropped afterwards unless it is a mapping
     * that {@code owned} keeps open).
     *
     * @param trace  records the schedule's operations for tests, or null
     * @param owned  closed with this generator, after the tiers' buffers
     */
    public OffloadedGenerator(OptWeights source, Gpt2Tokenizer tokenizer, Kernels kernels, Placement placement,
                              Tiers tiers, EngineOptions options, String modelName, ScheduleTrace trace,
                              AutoCloseable... owned) {
        this(source, null, tokenizer, kernels, placement, tiers, options, modelName, trace, owned);
    }

    /**
     * @param compressedLayers the decoder layers already compressed (from {@link CompressedWeightCache}; copied into
     *                         the tiers here), or null to quantize {@code source} when {@code options.compressWeight()}
     */
    OffloadedGenerator(OptWeights source, List<DecoderWeights> compressedLayers, Gpt2Tokenizer tokenizer,
                       Kernels kernels, Placement placement, Tiers tiers, EngineOptions options, String modelName,
                       ScheduleTrace trace, AutoCloseable... owned) {
        this.config = source.config();
        this.tokenizer = tokenizer;
        this.kernels = kernels;
        this.placement = placement;
        this.tiers = tiers;
        this.options = options;
        this.modelName = modelName;
        this.trace = trace;
        this.owned = owned.clone();
        AtomicInteger threadNumber = new AtomicInteger();
        this.io = Executors.newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, "flexstream-io-" + threadNumber.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        // Weight loads get their own thread, like FlexGen's separate stream: a layer piece waiting on the disk must
        // not hold up the next step's activation and cache transfers queued behind it. One thread suffices, since
        // the disk tier fans each piece out to its reader threads.
        this.weightIo = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "flexstream-weight-io");
            t.setDaemon(true);
            return t;
        });
        try {
            this.weights = new WeightStore(source, tiers, placement.weights(), options.weightFormat(),
                    compressedLayers);
            this.quantized = options.compressWeight()
                    ? new QuantizedLinear(Runtime.getRuntime().availableProcessors()) : null;
            this.cacheAttention = options.compressCache()
                    ? new QuantizedAttention(Runtime.getRuntime().availableProcessors()) : null;
            long working = weights.maxWorkingBytes();
            if (working > 0) {
                for (int i = 0; i < 2; i++) {
                    MemoryTier.Buffer b = tiers.device().allocate(working, "weight working buffer " + i);
                    buffers.add(b);
                    weightBuffers[i] = b.segment();
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    @Override
    public PreparedPrompt prepare(GenerationRequest request) throws InvalidRequestException {
        return PromptPreparer.prepare(request, tokenizer, config);
    }

    @Override
    public List<GenerationResult> generate(List<PreparedPrompt> prompts, GenerationListener listener) {
        return LengthOrder.generate(prompts, placement.blockSize(), contextLength(), tokenizer, sequences -> {
            BlockRun run = new BlockRun(this, sequences);
            try {
                run.run(listener);
                lastBlockBytes = run.realisedBytes();
            } finally {
                run.close();
            }
        });
    }

    /** Bytes placed per tier and tensor class (weights; KV cache and activations of the last block). */
    public String placementReport() {
        StringBuilder out = new StringBuilder();
        String[] names = {"weights", "KV cache (last block)", "activations (last block)"};
        long[][] rows = {{weights.bytesOn(TierKind.DEVICE), weights.bytesOn(TierKind.HOST),
                weights.bytesOn(TierKind.DISK)}, lastBlockBytes[0], lastBlockBytes[1]};
        for (int r = 0; r < 3; r++) {
            long total = rows[r][0] + rows[r][1] + rows[r][2];
            out.append(String.format("  %-25s device %10s (%5.1f%%)  host %10s (%5.1f%%)  disk %10s (%5.1f%%)%n",
                    names[r], Sizes.format(rows[r][0]), pct(rows[r][0], total), Sizes.format(rows[r][1]),
                    pct(rows[r][1], total), Sizes.format(rows[r][2]), pct(rows[r][2], total)));
        }
        out.append("  peak: ").append(tiers.peakReport());
        return out.toString();
    }

    /** Bytes of weights placed on a tier (all schedule layers). */
    public long weightBytesOn(TierKind kind) {
        return weights.bytesOn(kind);
    }

    /**
     * Bytes of KV cache the last block placed on a tier (keys and values of every layer, compressed bytes when
     * the cache is compressed).
     */
    public long cacheBytesOn(TierKind kind) {
        return lastBlockBytes[0][kind.ordinal()];
    }

    /** Weight bytes one token step loads from a tier (every layer but the token table, which is gathered by row). */
    public long weightBytesLoadedPerStep(TierKind kind) {
        return weights.loadedPerStepFrom(kind);
    }

    private static double pct(long part, long total) {
        return total == 0 ? 0 : 100.0 * part / total;
    }

    // Accessors for BlockRun.
    OptConfig config() {
        return config;
    }

    Placement placement() {
        return placement;
    }

    Tiers tiers() {
        return tiers;
    }

    Kernels kernels() {
        return kernels;
    }

    WeightStore weights() {
        return weights;
    }

    MemorySegment weightBuffer(int index) {
        return weightBuffers[index];
    }

    QuantizedLinear quantized() {
        return quantized;
    }

    QuantizedAttention cacheAttention() {
        return cacheAttention;
    }

    /** Bytes of one cached position of one layer's keys (or values) as stored on the tiers and moved between them. */
    long cacheRowBytes() {
        return KvCache.rowBytes(config, cacheAttention == null ? null : OptForward.cacheFormat(config));
    }

    ExecutorService io() {
        return io;
    }

    ExecutorService weightIo() {
        return weightIo;
    }

    ScheduleTrace trace() {
        return trace;
    }

    Gpt2Tokenizer tokenizer() {
        return tokenizer;
    }

    int eosId() {
        return options.stopAtEos() ? config.eosTokenId() : -1;
    }

    @Override
    public String modelName() {
        return modelName;
    }

    @Override
    public int contextLength() {
        return config.maxPositionEmbeddings();
    }

    @Override
    public void close() {
        io.shutdownNow();
        weightIo.shutdownNow();
        if (quantized != null) {
            quantized.close();
        }
        if (cacheAttention != null) {
            cacheAttention.close();
        }
        for (MemoryTier.Buffer b : buffers) {
            b.close();
        }
        buffers.clear();
        if (weights != null) {
            weights.close();
        }
        for (int i = owned.length - 1; i >= 0; i--) {
            try {
                owned[i].close();
            } catch (Exception e) {
                throw new IllegalStateException("closing the offloading engine failed", e);
            }
        }
    }
}
