package io.flexstream.engine;

import io.flexstream.kernel.CpuKernels;
import io.flexstream.kernel.Kernels;
import io.flexstream.model.Checkpoint;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.model.tokenizer.Gpt2Tokenizer;
import io.flexstream.quant.QuantizedAttention;
import io.flexstream.quant.QuantizedLinear;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The in-memory OPT engine: every weight and the whole KV cache live in host memory, computed by one
 * {@link Kernels} backend. Prompts are left-padded to a common length per batch (Hugging Face semantics), run
 * through a prefill, then decoded one token per step; finished sequences leave the batch at once.
 */
public final class OptGenerator implements Generator {

    /** Prefill works on groups of sequences of at most this many token rows, which bounds activation memory. */
    private static final int MAX_PREFILL_ROWS = Integer.getInteger("flexstream.prefillRows", 4096);

    private final OptWeights weights;
    private final OptConfig config;
    private final Gpt2Tokenizer tokenizer;
    private final Kernels kernels;
    private final String modelName;
    private final EngineOptions options;
    private final List<DecoderWeights> layers;
    private final LinearWeight tokenTable;
    private final LinearWeight lmHead;
    private final QuantizedLinear quantized;
    private final Arena compressed;
    private final QuantizedAttention cacheAttention; // null unless the KV cache is compressed
    private final AutoCloseable[] owned;
    private volatile long lastBatchCacheBytes;

    /**
     * @param tokenizer null for token-id-only use (benchmarks): text prompts are then refused
     * @param owned     resources closed with this generator (arena, checkpoint, kernels)
     */
    public OptGenerator(OptWeights weights, Gpt2Tokenizer tokenizer, Kernels kernels, String modelName,
                        EngineOptions options, AutoCloseable... owned) {
        this(weights, null, tokenizer, kernels, modelName, options, owned);
    }

    /**
     * @param compressedLayers the decoder layers already compressed (from {@link CompressedWeightCache}), or null to
     *                         quantize {@code weights} here when {@code options.compressWeight()}
     */
    OptGenerator(OptWeights weights, List<DecoderWeights> compressedLayers, Gpt2Tokenizer tokenizer, Kernels kernels,
                 String modelName, EngineOptions options, AutoCloseable... owned) {
        this.weights = weights;
        this.config = weights.config();
        this.tokenizer = tokenizer;
        this.kernels = kernels;
        this.modelName = modelName;
        this.options = options;
        this.owned = owned.clone();
        if (options.fp16Weights()) {
            throw new IllegalArgumentException("fp16 weight storage is a mode of the offloading engine (its tiers "
                    + "hold the halves); use OffloadedGenerator, or --fp16-weights on the command line, which selects "
                    + "it");
        }
        if (options.compressWeight()) {
            this.compressed = Arena.ofShared();
            this.quantized = new QuantizedLinear(Runtime.getRuntime().availableProcessors());
            // The decoder layers come from the on-disk cache when it had them (their memory then belongs to an
            // entry of owned); otherwise they are compressed here once, and the fp32 matrices are not read again.
            this.layers = compressedLayers != null ? List.copyOf(compressedLayers)
                    : weights.layers().stream().map(l -> DecoderWeights.quantize(l, config.hiddenSize(),
                    config.ffnDim(), compressed)).toList();
            // The token table and the head are one matrix in OPT (tied): the largest one, compressed like the rest.
            this.tokenTable = DecoderWeights.quantizeMatrix(weights.embedTokens(), config.vocabSize(),
                    config.wordEmbedProjDim(), compressed);
            this.lmHead = weights.tiedLmHead() ? tokenTable : DecoderWeights.quantizeMatrix(weights.lmHead(),
                    config.vocabSize(), config.wordEmbedProjDim(), compressed);
        } else {
            this.compressed = null;
            this.quantized = null;
            this.layers = weights.layers().stream().map(DecoderWeights::dense).toList();
            this.tokenTable = new LinearWeight.Dense(weights.embedTokens());
            this.lmHead = new LinearWeight.Dense(weights.lmHead());
        }
        this.cacheAttention = options.compressCache()
                ? new QuantizedAttention(Runtime.getRuntime().availableProcessors()) : null;
    }

    /** Loads a Hugging Face OPT checkpoint directory onto the CPU backend with all cores. */
    public static OptGenerator load(Path modelDir) {
        return load(modelDir, new CpuKernels(), EngineOptions.defaults());
    }

    /**
     * Loads a checkpoint directory; the generator owns {@code kernels} and closes them with itself. With
     * {@code options.compressWeight()} the compressed layers come from the checkpoint's {@link CompressedWeightCache}
     * (quantized and cached on the first start only).
     */
    public static OptGenerator load(Path modelDir, Kernels kernels, EngineOptions options) {
        Arena arena = Arena.ofShared();
        Checkpoint checkpoint = null;
        CompressedWeightCache cache = null;
        try {
            checkpoint = Checkpoint.open(modelDir);
            OptWeights weights = OptWeights.load(checkpoint, arena);
            Gpt2Tokenizer tokenizer = Gpt2Tokenizer.load(modelDir);
            if (tokenizer.vocabSize() > weights.config().vocabSize()) {
                throw new IllegalArgumentException("tokenizer of " + modelDir + " has " + tokenizer.vocabSize()
                        + " tokens but config.json says vocab_size=" + weights.config().vocabSize());
            }
            Path name = modelDir.toAbsolutePath().normalize().getFileName();
            if (options.compressWeight()) {
                cache = CompressedWeightCache.open(modelDir, options.weightCacheDir(), weights);
            }
            AutoCloseable mapping = cache == null ? () -> { } : cache;
            return new OptGenerator(weights, cache == null ? null : cache.layers(), tokenizer, kernels,
                    name == null ? "model" : name.toString(), options, arena, checkpoint, mapping,
                    asCloseable(kernels));
        } catch (RuntimeException e) {
            if (cache != null) {
                cache.close();
            }
            if (checkpoint != null) {
                checkpoint.close();
            }
            arena.close();
            throw e;
        }
    }

    private static AutoCloseable asCloseable(Kernels kernels) {
        return kernels instanceof AutoCloseable c ? c : () -> { };
    }

    @Override
    public PreparedPrompt prepare(GenerationRequest request) throws InvalidRequestException {
        return PromptPreparer.prepare(request, tokenizer, config);
    }

    @Override
    public List<GenerationResult> generate(List<PreparedPrompt> prompts, GenerationListener listener) {
        return LengthOrder.generate(prompts, options.maxBatchSize(), contextLength(), tokenizer,
                batch -> runBatch(batch, listener));
    }

    private void runBatch(List<SequenceState> batch, GenerationListener listener) {
        int slots = batch.size();
        int promptLen = batch.stream().mapToInt(SequenceState::promptLength).max().orElseThrow();
        int maxBudget = batch.stream().mapToInt(s -> s.budget).max().orElseThrow();
        int groupSize = Math.max(1, Math.min(slots, MAX_PREFILL_ROWS / promptLen));
        int eos = options.stopAtEos() ? config.eosTokenId() : -1;
        try (Arena arena = Arena.ofShared()) {
            long cacheRow = KvCache.rowBytes(config, cacheAttention == null ? null : OptForward.cacheFormat(config));
            KvCache cache = new KvCache(arena, config.numLayers(), slots, promptLen + maxBudget, cacheRow);
            lastBatchCacheBytes = cache.bytes();
            int maxRows = Math.max(groupSize * promptLen, slots);
            OptForward forward = new OptForward(config, kernels, quantized, cacheAttention, arena, maxRows, slots);
            MemorySegment x = arena.allocate((long) maxRows * config.hiddenSize() * Float.BYTES, 64);
            MemorySegment logits = arena.allocate((long) slots * config.vocabSize() * Float.BYTES, 64);
            float[] row = new float[config.vocabSize()];

            long t0 = System.nanoTime();
            int[] tokens = new int[slots * promptLen];
            int[] positions = new int[slots * promptLen];
            for (int s = 0; s < slots; s++) {
                int[] ids = batch.get(s).prompt.tokenIds();
                int pad = promptLen - ids.length;
                for (int t = 0; t < promptLen; t++) {
                    boolean real = t >= pad;
                    tokens[s * promptLen + t] = real ? ids[t - pad] : config.padTokenId();
                    positions[s * promptLen + t] = real ? t - pad : -1;
                    cache.setValid(s, t, real);
                }
            }
            for (int first = 0; first < slots; first += groupSize) {
                int count = Math.min(groupSize, slots - first);
                int from = first * promptLen;
                int to = from + count * promptLen;
                forward.forward(weights, tokenTable, lmHead, layers, cache, first, count, promptLen, promptLen,
                        Arrays.copyOfRange(tokens, from, to), Arrays.copyOfRange(positions, from, to), x,
                        logits.asSlice((long) first * config.vocabSize() * Float.BYTES));
            }
            // slot -> sequence; shrinks as sequences finish.
            List<SequenceState> active = new ArrayList<>(batch);
            sampleAll(active, logits, row, eos);
            listener.prefillDone(slots, slots * promptLen, System.nanoTime() - t0);

            int kvLen = promptLen;
            int step = 0;
            while (true) {
                active = compact(active, cache, kvLen);
                if (active.isEmpty()) {
                    break;
                }
                long ts = System.nanoTime();
                int n = active.size();
                int[] stepTokens = new int[n];
                int[] stepPositions = new int[n];
                for (int s = 0; s < n; s++) {
                    SequenceState seq = active.get(s);
                    stepTokens[s] = seq.lastToken();
                    stepPositions[s] = seq.realTokens() - 1;
                    cache.setValid(s, kvLen, true);
                }
                kvLen++;
                forward.forward(weights, tokenTable, lmHead, layers, cache, 0, n, 1, kvLen, stepTokens, stepPositions, x, logits);
                sampleAll(active, logits, row, eos);
                step++;
                listener.decodeStep(step, maxBudget - 1, n, System.nanoTime() - ts);
            }
        }
    }

    private void sampleAll(List<SequenceState> active, MemorySegment logits, float[] row, int eos) {
        for (int s = 0; s < active.size(); s++) {
            OptForward.readRow(logits, s, row);
            SequenceState seq = active.get(s);
            seq.accept(seq.sampler.next(row), eos, tokenizer);
        }
    }

    /** Drops finished sequences from the batch, moving the survivors' cache slots to the front. */
    private static List<SequenceState> compact(List<SequenceState> active, KvCache cache, int kvLen) {
        int[] keep = new int[active.size()];
        int kept = 0;
        for (int s = 0; s < active.size(); s++) {
            if (!active.get(s).finished()) {
                keep[kept++] = s;
            }
        }
        if (kept == active.size()) {
            return active;
        }
        List<SequenceState> survivors = new ArrayList<>(kept);
        for (int i = 0; i < kept; i++) {
            survivors.add(active.get(keep[i]));
        }
        if (kept > 0) {
            cache.compact(Arrays.copyOf(keep, kept), kvLen);
        }
        return survivors;
    }

    @Override
    public String modelName() {
        return modelName;
    }

    @Override
    public int contextLength() {
        return config.maxPositionEmbeddings();
    }

    /**
     * Bytes of the weights the engine computes with: fp32 tensors, the decoder layers' six matrices compressed
     * (codes and metadata) under {@code compressWeight}.
     */
    public long weightBytes() {
        long total = weights.bytes();
        for (int i = 0; i < layers.size(); i++) {
            var dense = weights.layers().get(i);
            DecoderWeights used = layers.get(i);
            List<MemorySegment> fp32 = List.of(dense.qWeight(), dense.kWeight(), dense.vWeight(), dense.outWeight(),
                    dense.fc1Weight(), dense.fc2Weight());
            List<LinearWeight> held = List.of(used.q(), used.k(), used.v(), used.out(), used.fc1(), used.fc2());
            for (int m = 0; m < 6; m++) {
                if (held.get(m) instanceof LinearWeight.Quantized q) {
                    total += q.weight().bytes() - fp32.get(m).byteSize();
                }
            }
        }
        return total;
    }

    /** Bytes of KV cache (keys and values, every layer) the last batch allocated; compressed under compressCache. */
    public long lastBatchCacheBytes() {
        return lastBatchCacheBytes;
    }

    public OptConfig config() {
        return config;
    }

    public Kernels kernels() {
        return kernels;
    }

    @Override
    public void close() {
        if (quantized != null) {
            quantized.close();
        }
        if (compressed != null) {
            compressed.close();
        }
        if (cacheAttention != null) {
            cacheAttention.close();
        }
        RuntimeException failure = null;
        for (int i = owned.length - 1; i >= 0; i--) {
            try {
                owned[i].close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = new IllegalStateException("closing the engine failed", e);
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
