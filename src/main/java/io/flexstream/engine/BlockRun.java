package io.flexstream.engine;

import io.flexstream.engine.ScheduleTrace.Op;
import io.flexstream.kernel.CpuKernels;
import io.flexstream.model.OptConfig;
import io.flexstream.tier.MemoryTier;
import io.flexstream.tier.SplitStore;
import io.flexstream.tier.TierShares;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * Generation of one block (up to gbs x nb sequences) by the offloading engine.
 *
 * <p>The block is walked as a sequence of <em>runs</em>: consecutive compute steps on one schedule layer (embedding,
 * decoder layers, head). The zig-zag schedule makes a run of every active GPU batch of the block for each (token,
 * layer); the row schedule makes a run of one batch. While a run computes, I/O threads
 * <ul>
 *   <li>load the next run's layer weights into the other weight buffer, cut into one piece per step of the run so
 *       the transfer spreads over the whole block (FlexGen issues it at the first batch only, hiding it behind one
 *       batch's compute);</li>
 *   <li>load the next step's hidden states and KV cache into the other input slot;</li>
 *   <li>store the previous step's new KV rows and hidden states to their home tiers.</li>
 * </ul>
 * Invariants (tested through {@link ScheduleTrace}): a slot is reloaded only after the store of the step that last
 * used it finished; a (layer, batch) cache is read only after its previous store finished; at most two layers'
 * weights are resident on the device.
 *
 * <p>Decode runs of the zig-zag schedule compute all their batches in one pass instead ({@link #runFused}) when the
 * cache and activations stay on the device and the kernels are the CPU's.
 */
final class BlockRun {

    private static final long F = Float.BYTES;

    private final OffloadedGenerator engine;
    private final OptConfig config;
    private final List<List<SequenceState>> batches;
    private final int promptLen;
    private final int capacity;
    private final int maxSteps;
    private final int scheduleLayers;
    private final long rowBytes;      // one position of hidden state, fp32
    private final long cacheRowBytes; // one position of one layer's keys (or values): fp32 or compressed
    private final boolean delegate;
    private final SplitStore[][] keys;   // [decoder layer][batch]
    private final SplitStore[][] values;
    private final SplitStore[] hidden;   // [batch]
    private final BlockMemory memory;
    private final MemoryTier.Buffer[] valid;
    private final MemorySegment[] cacheSlotK;
    private final MemorySegment[] cacheSlotV;
    private final MemorySegment[] xSlot;
    private final MemorySegment logits;
    private final OptForward forward;
    private final float[] logitRow;
    /** Decode steps compute every active batch of the block in one pass per layer (see {@link #runFused}). */
    private final boolean fusedDecode;

    @SuppressWarnings("unchecked")
    private final CompletableFuture<Void>[] inputReady = new CompletableFuture[] {done(), done()};
    @SuppressWarnings("unchecked")
    private final CompletableFuture<Void>[] slotFree = new CompletableFuture[] {done(), done()};
    private final Map<Long, CompletableFuture<Void>> lastCacheStore = new HashMap<>();
    private final Map<Integer, CompletableFuture<Void>> lastHiddenStore = new HashMap<>();
    private final List<CompletableFuture<Void>> nextWeightPieces = new ArrayList<>();
    private long stepCounter;
    private int runCounter;

    BlockRun(OffloadedGenerator engine, List<SequenceState> sequences) {
        this.engine = engine;
        this.config = engine.config();
        Placement placement = engine.placement();
        int gbs = placement.gpuBatchSize();
        this.batches = new ArrayList<>();
        for (int from = 0; from < sequences.size(); from += gbs) {
            batches.add(sequences.subList(from, Math.min(sequences.size(), from + gbs)));
        }
        this.promptLen = sequences.stream().mapToInt(SequenceState::promptLength).max().orElseThrow();
        this.maxSteps = sequences.stream().mapToInt(s -> s.budget).max().orElseThrow();
        this.capacity = promptLen + maxSteps;
        this.scheduleLayers = config.numLayers() + 2;
        this.rowBytes = (long) config.hiddenSize() * F;
        this.cacheRowBytes = engine.cacheRowBytes();
        this.delegate = placement.cpuCacheCompute();
        this.fusedDecode = placement.schedule() == ScheduleKind.ZIGZAG && batches.size() > 1
                && placement.cache().equals(TierShares.ALL_DEVICE)
                && placement.activations().equals(TierShares.ALL_DEVICE)
                && engine.kernels() instanceof CpuKernels;
        this.memory = new BlockMemory(engine, batches, promptLen, capacity, fusedDecode);
        this.keys = memory.keys;
        this.values = memory.values;
        this.hidden = memory.hidden;
        this.valid = memory.valid;
        this.cacheSlotK = memory.cacheSlotK;
        this.cacheSlotV = memory.cacheSlotV;
        this.xSlot = memory.xSlot;
        this.logits = memory.logits;
        this.forward = memory.forward;
        this.logitRow = new float[config.vocabSize()];
    }

    private static CompletableFuture<Void> done() {
        return CompletableFuture.completedFuture(null);
    }

    /** Generates every sequence of the block to completion. */
    void run(GenerationListener listener) {
        List<Integer> all = new ArrayList<>();
        for (int k = 0; k < batches.size(); k++) {
            all.add(k);
        }
        loadWeightsNow(0);
        if (engine.placement().schedule() == ScheduleKind.ZIGZAG) {
            for (int token = 0; token < maxSteps; token++) {
                long t0 = System.nanoTime();
                List<Integer> active = token == 0 ? all : all.stream().filter(k -> !batchDone(k)).toList();
                if (active.isEmpty()) {
                    break;
                }
                for (int layer = 0; layer < scheduleLayers; layer++) {
                    if (fusedDecode && token > 0) {
                        runFused(token, layer, active);
                    } else {
                        runLayer(token, layer, active);
                    }
                    listener.layerDone(token, layer, scheduleLayers);
                }
                report(listener, token, t0);
            }
        } else {
            for (int k = 0; k < batches.size(); k++) {
                for (int token = 0; token < maxSteps && !batchDone(k); token++) {
                    long t0 = System.nanoTime();
                    for (int layer = 0; layer < scheduleLayers; layer++) {
                        runLayer(token, layer, List.of(k));
                        listener.layerDone(token, layer, scheduleLayers);
                    }
                    report(listener, token, t0);
                }
            }
        }
        drain(true);
    }

    private void report(GenerationListener listener, int token, long t0) {
        long nanos = System.nanoTime() - t0;
        if (token == 0) {
            listener.prefillDone(batches.stream().mapToInt(List::size).sum(), promptLen, nanos);
        } else {
            int active = (int) batches.stream().flatMap(List::stream).filter(s -> !s.finished()).count();
            listener.decodeStep(token, maxSteps - 1, active, nanos);
        }
    }

    private boolean batchDone(int k) {
        for (SequenceState s : batches.get(k)) {
            if (!s.finished()) {
                return false;
            }
        }
        return true;
    }

    /**
     * The weights of run {@code run} (schedule layer {@code layer}): resident ones as they are, the others once the
     * load issued during the previous run (or by the prologue) has finished, in that run's weight buffer.
     */
    private List<MemorySegment> awaitWeights(int token, int layer, int run) {
        CompletableFuture.allOf(nextWeightPieces.toArray(CompletableFuture[]::new)).join();
        nextWeightPieces.clear();
        List<MemorySegment> weights = engine.weights().resident(layer);
        if (weights == null) {
            weights = engine.weights().bind(layer, engine.weightBuffer(run % 2));
        }
        trace(Op.LOAD_WEIGHT_DONE, token, layer, -1);
        return weights;
    }

    /** One run: a schedule layer over the given batches, with the next run's weights loading meanwhile. */
    private void runLayer(int token, int layer, List<Integer> runBatches) {
        int run = runCounter++;
        List<MemorySegment> weights = awaitWeights(token, layer, run);
        int nextLayer = (layer + 1) % scheduleLayers;
        int nextToken = nextLayer == 0 ? token + 1 : token;
        boolean nextNeedsLoad = engine.weights().resident(nextLayer) == null;
        int pieces = runBatches.size();
        for (int p = 0; p < pieces; p++) {
            int k = runBatches.get(p);
            if (nextNeedsLoad) {
                MemorySegment target = engine.weightBuffer((run + 1) % 2);
                int piece = p;
                if (piece == 0) {
                    trace(Op.LOAD_WEIGHT_START, nextToken, nextLayer, -1);
                }
                nextWeightPieces.add(CompletableFuture.runAsync(
                        () -> engine.weights().loadPiece(nextLayer, piece, pieces, target), engine.weightIo()));
            }
            long step = stepCounter;
            int slot = (int) (step % 2);
            if (step == 0 || layer == 0) {
                // Nothing was prefetched for the very first step; the embedding reads token ids, not stored state.
                prefetch(token, layer, k, slot);
            }
            // The next step's inputs load into the other slot while this one computes, unless they are this step's
            // own output (one GPU batch per block): then they load after it.
            int nextLayerOfStep = p + 1 < pieces ? layer : layer + 1;
            int nextBatch = p + 1 < pieces ? runBatches.get(p + 1) : runBatches.getFirst();
            boolean hasNext = nextLayerOfStep < scheduleLayers;
            boolean dependsOnThis = nextBatch == k;
            if (hasNext && !dependsOnThis) {
                prefetch(token, nextLayerOfStep, nextBatch, (slot + 1) % 2);
            }
            inputReady[slot].join();
            compute(token, layer, k, slot, weights);
            if (hasNext && dependsOnThis) {
                prefetch(token, nextLayerOfStep, nextBatch, (slot + 1) % 2);
            }
            stepCounter++;
        }
        trace(Op.RELEASE_WEIGHT, token, layer, -1);
    }

    /**
     * A decode run of the zig-zag schedule with every active batch computed together: the same weight loads (this
     * layer's were loaded during the previous run, the next layer's load now), but one pass over the layer's weights
     * for the whole block instead of one per GPU batch. On the CPU backend a decode-sized batch is bound by reading
     * the weights from memory, so nb batches one after another read them nb times; on a 4 x 8 block of an
     * OPT-1.3B-shaped model that was most of the step.
     *
     * <p>Only when the KV cache and the activations live wholly on the device (nothing to load or store per batch,
     * the cache is attended in place) and the kernels are the CPU's, whose results do not depend on how many rows a
     * call has: a sequence then gets exactly the bits of the per-batch path. The hidden states stay in one buffer
     * across the step's layers.
     */
    private void runFused(int token, int layer, List<Integer> runBatches) {
        int run = runCounter++;
        List<MemorySegment> weights = awaitWeights(token, layer, run);
        int nextLayer = (layer + 1) % scheduleLayers;
        if (engine.weights().resident(nextLayer) == null) {
            int nextToken = nextLayer == 0 ? token + 1 : token;
            MemorySegment target = engine.weightBuffer((run + 1) % 2);
            int pieces = runBatches.size();
            trace(Op.LOAD_WEIGHT_START, nextToken, nextLayer, -1);
            for (int p = 0; p < pieces; p++) {
                int piece = p;
                nextWeightPieces.add(CompletableFuture.runAsync(
                        () -> engine.weights().loadPiece(nextLayer, piece, pieces, target), engine.weightIo()));
            }
        }
        int[] firstRow = new int[runBatches.size()];
        int rows = 0;
        for (int i = 0; i < runBatches.size(); i++) {
            firstRow[i] = rows;
            rows += batches.get(runBatches.get(i)).size();
            trace(Op.COMPUTE, token, layer, runBatches.get(i));
        }
        MemorySegment x = memory.fusedX;
        if (layer == 0) {
            for (int i = 0; i < runBatches.size(); i++) {
                int k = runBatches.get(i);
                embed(token, batches.get(k), k, 1, weights, x.asSlice(firstRow[i] * rowBytes));
            }
        } else if (layer <= config.numLayers()) {
            int decoder = layer - 1;
            List<CachePart> parts = new ArrayList<>();
            for (int i = 0; i < runBatches.size(); i++) {
                for (CachePart p : cacheParts(decoder, runBatches.get(i), 0)) {
                    parts.add(new CachePart(firstRow[i] + p.firstSlot(), p.slots(), p.keys(), p.values(), p.valid(),
                            p.capacity()));
                }
            }
            forward.layer(engine.weights().decoder(weights), x, rows, 1, promptLen + token, parts);
        } else {
            forward.head(weights.get(0), weights.get(1), weights.get(2), engine.weights().lmHead(weights), x, rows, 1,
                    logits);
            for (int i = 0; i < runBatches.size(); i++) {
                List<SequenceState> batch = batches.get(runBatches.get(i));
                for (int s = 0; s < batch.size(); s++) {
                    SequenceState seq = batch.get(s);
                    if (!seq.finished()) {
                        OptForward.readRow(logits, firstRow[i] + s, logitRow);
                        seq.accept(seq.sampler.next(logitRow), engine.eosId(), engine.tokenizer());
                    }
                }
            }
        }
        trace(Op.RELEASE_WEIGHT, token, layer, -1);
    }

    /** Loads weights synchronously (the prologue, before anything else runs). */
    private void loadWeightsNow(int layer) {
        if (engine.weights().resident(layer) == null) {
            trace(Op.LOAD_WEIGHT_START, 0, layer, -1);
            engine.weights().loadPiece(layer, 0, 1, engine.weightBuffer(0));
        }
    }

    private void prefetch(int token, int layer, int k, int slot) {
        if (layer == 0) {
            // The embedding reads token ids, not stored state: it only waits until its slot is free again.
            inputReady[slot] = slotFree[slot];
            return;
        }
        int count = batches.get(k).size();
        int qLen = token == 0 ? promptLen : 1;
        int kvBefore = token == 0 ? 0 : promptLen + token - 1;
        // Wait until the slot's last user has stored its outputs, and until this batch's hidden state (and this
        // layer's cache) have been stored by the steps that produced them.
        int decoder = layer - 1;
        boolean isDecoder = layer <= config.numLayers();
        CompletableFuture<Void> after = CompletableFuture.allOf(slotFree[slot],
                lastHiddenStore.getOrDefault(k, done()),
                isDecoder ? lastCacheStore.getOrDefault(key(decoder, k), done()) : done());
        inputReady[slot] = after.thenRunAsync(() -> {
            trace(Op.LOAD_HIDDEN, token, layer, k);
            for (int s = 0; s < count; s++) {
                hidden[k].read(s, 0, xSlot[slot], s * qLen * rowBytes, qLen * rowBytes);
            }
            if (isDecoder && kvBefore > 0) {
                trace(Op.LOAD_CACHE, token, layer, k);
                int first = firstWorkingItem(keys[decoder][k]);
                long seqBytes = capacity * cacheRowBytes;
                // All sequences' requests at once: a disk-resident cache moves in small requests whose latency,
                // one after another, outlasted the layer's compute (bench policy, cache on disk).
                keys[decoder][k].readItems(first, count, 0, cacheSlotK[slot], seqBytes, kvBefore * cacheRowBytes);
                values[decoder][k].readItems(first, count, 0, cacheSlotV[slot], seqBytes, kvBefore * cacheRowBytes);
            }
        }, engine.io());
    }

    /** First sequence of a batch whose cache is copied to a working buffer rather than used in place. */
    private int firstWorkingItem(SplitStore store) {
        return store.deviceItems() + (delegate ? store.hostItems() : 0);
    }

    private void compute(int token, int layer, int k, int slot, List<MemorySegment> w) {
        trace(Op.COMPUTE, token, layer, k);
        List<SequenceState> batch = batches.get(k);
        int count = batch.size();
        int qLen = token == 0 ? promptLen : 1;
        int kvLen = token == 0 ? promptLen : promptLen + token;
        MemorySegment x = xSlot[slot];
        if (layer == 0) {
            embed(token, batch, k, qLen, w, x);
            storeAsync(token, layer, k, slot, count, qLen, -1, 0);
        } else if (layer <= config.numLayers()) {
            int decoder = layer - 1;
            forward.layer(engine.weights().decoder(w), x, count, qLen, kvLen, cacheParts(decoder, k, slot));
            storeAsync(token, layer, k, slot, count, qLen, decoder, kvLen - qLen);
        } else {
            forward.head(w.get(0), w.get(1), w.get(2), engine.weights().lmHead(w), x, count, qLen, logits);
            for (int s = 0; s < count; s++) {
                SequenceState seq = batch.get(s);
                if (!seq.finished()) {
                    OptForward.readRow(logits, s, logitRow);
                    seq.accept(seq.sampler.next(logitRow), engine.eosId(), engine.tokenizer());
                }
            }
            slotFree[slot] = done();
        }
    }

    private void embed(int token, List<SequenceState> batch, int k, int qLen, List<MemorySegment> w,
                       MemorySegment x) {
        int count = batch.size();
        int[] tokens = new int[count * qLen];
        int[] positions = new int[count * qLen];
        MemorySegment mask = valid[k].segment();
        for (int s = 0; s < count; s++) {
            SequenceState seq = batch.get(s);
            if (token == 0) {
                int[] ids = seq.prompt.tokenIds();
                int pad = promptLen - ids.length;
                for (int t = 0; t < promptLen; t++) {
                    boolean real = t >= pad;
                    tokens[s * promptLen + t] = real ? ids[t - pad] : config.padTokenId();
                    positions[s * promptLen + t] = real ? t - pad : -1;
                    mask.setAtIndex(ValueLayout.JAVA_FLOAT, (long) s * capacity + t, real ? 1f : 0f);
                }
            } else {
                // A finished sequence still rides along in its batch; what it is fed no longer matters.
                tokens[s] = seq.finished() ? config.padTokenId() : seq.lastToken();
                positions[s] = seq.realTokens() - 1;
                mask.setAtIndex(ValueLayout.JAVA_FLOAT, (long) s * capacity + promptLen + token - 1, 1f);
            }
        }
        // Only this batch's rows of the token table are read, wherever it lives (layer 0's working copy holds none).
        engine.weights().gatherTokenRows(tokens, count * qLen, memory.tokenRows);
        int[] rows = java.util.stream.IntStream.range(0, count * qLen).toArray();
        forward.embed(new LinearWeight.Dense(memory.tokenRows), engine.weights().embedPositions(w),
                engine.weights().projectIn(w), rows, positions, count * qLen, x);
    }

    /** The batch's cache as attention sees it: device sequences in place, the others in place or copied. */
    private List<CachePart> cacheParts(int decoder, int k, int slot) {
        SplitStore ks = keys[decoder][k];
        SplitStore vs = values[decoder][k];
        MemorySegment mask = valid[k].segment();
        long maskRow = capacity * F;
        List<CachePart> parts = new ArrayList<>(3);
        int dc = ks.deviceItems();
        int hc = ks.hostItems();
        int count = dc + hc + ks.diskItems();
        if (dc > 0) {
            parts.add(new CachePart(0, dc, ks.deviceView(), vs.deviceView(), mask.asSlice(0, dc * maskRow), capacity));
        }
        if (delegate && hc > 0) {
            parts.add(new CachePart(dc, hc, ks.hostView(), vs.hostView(), mask.asSlice(dc * maskRow, hc * maskRow),
                    capacity));
        }
        int first = firstWorkingItem(ks);
        if (first < count) {
            int n = count - first;
            long bytes = n * capacity * cacheRowBytes;
            parts.add(new CachePart(first, n, cacheSlotK[slot].asSlice(0, bytes), cacheSlotV[slot].asSlice(0, bytes),
                    mask.asSlice(first * maskRow, n * maskRow), capacity));
        }
        return parts;
    }

    /** Stores the step's outputs to their homes on an I/O thread; the slot is free again when that finishes. */
    private void storeAsync(int token, int layer, int k, int slot, int count, int qLen, int decoder, int kvFrom) {
        CompletableFuture<Void> store = CompletableFuture.runAsync(() -> {
            if (decoder >= 0) {
                trace(Op.STORE_CACHE, token, layer, k);
                int first = firstWorkingItem(keys[decoder][k]);
                long seqBytes = capacity * cacheRowBytes;
                long at = kvFrom * cacheRowBytes;
                for (int s = first; s < count; s++) {
                    long src = (s - first) * seqBytes + at;
                    keys[decoder][k].write(s, at, cacheSlotK[slot], src, qLen * cacheRowBytes);
                    values[decoder][k].write(s, at, cacheSlotV[slot], src, qLen * cacheRowBytes);
                }
            }
            trace(Op.STORE_HIDDEN, token, layer, k);
            for (int s = 0; s < count; s++) {
                hidden[k].write(s, 0, xSlot[slot], s * qLen * rowBytes, qLen * rowBytes);
            }
        }, engine.io());
        slotFree[slot] = store;
        lastHiddenStore.put(k, store);
        if (decoder >= 0) {
            lastCacheStore.put(key(decoder, k), store);
        }
    }

    private static long key(int decoder, int k) {
        return ((long) decoder << 32) | k;
    }

    private void trace(Op op, int token, int layer, int batch) {
        ScheduleTrace trace = engine.trace();
        if (trace != null) {
            trace.record(op, token, layer, batch);
        }
    }

    /** Waits for every outstanding transfer, so that buffers can be freed; optionally rethrows the first failure. */
    private void drain(boolean rethrow) {
        List<CompletableFuture<Void>> pending = new ArrayList<>(nextWeightPieces);
        pending.addAll(List.of(inputReady));
        pending.addAll(List.of(slotFree));
        pending.addAll(lastCacheStore.values());
        pending.addAll(lastHiddenStore.values());
        Throwable failure = null;
        for (CompletableFuture<Void> f : pending) {
            try {
                f.join();
            } catch (RuntimeException e) {
                failure = failure == null ? e : failure;
            }
        }
        nextWeightPieces.clear();
        if (rethrow && failure != null) {
            throw new IllegalStateException("a transfer of the offloading engine failed: " + failure.getMessage(),
                    failure);
        }
    }

    long[][] realisedBytes() {
        return memory.realisedBytes();
    }

    void close() {
        drain(false);
        memory.close();
    }
}
