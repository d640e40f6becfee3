package io.flexstream.engine;

import io.flexstream.model.OptConfig;
import io.flexstream.tier.MemoryTier;
import io.flexstream.tier.SplitStore;
import io.flexstream.tier.TierKind;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.util.ArrayList;
import java.util.List;

/**
 * Everything one block of the offloading engine allocates on the tiers: per (decoder layer, GPU batch) the KV cache
 * split by whole sequences, per batch the activations and the attention mask, two input slots (hidden states and the
 * working copy of the cache that does not compute in place) for double buffering, the logits and the compute
 * scratch. All of it is charged to the tiers' budgets and freed with the block.
 */
final class BlockMemory implements AutoCloseable {

    private static final long F = Float.BYTES;

    final SplitStore[][] keys;   // [decoder layer][batch]
    final SplitStore[][] values;
    final SplitStore[] hidden;   // [batch]
    final MemoryTier.Buffer[] valid;
    final MemorySegment[] cacheSlotK = new MemorySegment[2];
    final MemorySegment[] cacheSlotV = new MemorySegment[2];
    final MemorySegment[] xSlot = new MemorySegment[2];
    final MemorySegment logits;
    /**
     * The block's hidden states, one row per sequence, when decode steps compute every batch together (see
     * {@link BlockRun}); null otherwise.
     */
    final MemorySegment fusedX;
    /** Token embedding rows gathered for one batch step, [gbs * promptLen, embedDim]. */
    final MemorySegment tokenRows;
    final OptForward forward;
    private final OptConfig config;
    private final List<AutoCloseable> owned = new ArrayList<>();

    BlockMemory(OffloadedGenerator engine, List<List<SequenceState>> batches, int promptLen, int capacity,
                boolean fused) {
        this.config = engine.config();
        Placement placement = engine.placement();
        int gbs = placement.gpuBatchSize();
        boolean delegate = placement.cpuCacheCompute();
        long rowBytes = (long) config.hiddenSize() * F;
        int nb = batches.size();
        keys = new SplitStore[config.numLayers()][nb];
        values = new SplitStore[config.numLayers()][nb];
        hidden = new SplitStore[nb];
        valid = new MemoryTier.Buffer[nb];
        var tiers = engine.tiers();
        try {
            long seqCacheBytes = capacity * engine.cacheRowBytes(); // compressed rows under --compress-cache
            for (int k = 0; k < nb; k++) {
                int count = batches.get(k).size();
                for (int l = 0; l < config.numLayers(); l++) {
                    keys[l][k] = own(new SplitStore(tiers, count, seqCacheBytes, placement.cache(), "KV cache"));
                    values[l][k] = own(new SplitStore(tiers, count, seqCacheBytes, placement.cache(), "KV cache"));
                }
                hidden[k] = own(new SplitStore(tiers, count, promptLen * rowBytes, placement.activations(),
                        "activations"));
                valid[k] = own(tiers.device().allocate(count * capacity * F, "attention mask"));
            }
            // Working copies of the cache that does not compute in place: host and disk sequences on the device,
            // or only disk sequences (into host memory) when attention is delegated to where the cache lives.
            int working = 0;
            for (List<SequenceState> batch : batches) { // a partial last batch may round differently
                int[] split = placement.cache().splitItems(batch.size());
                working = Math.max(working, delegate ? split[2] : split[1] + split[2]);
            }
            MemoryTier workingTier = delegate ? tiers.host() : tiers.device();
            for (int s = 0; s < 2; s++) {
                if (working > 0) {
                    cacheSlotK[s] = own(workingTier.allocate(working * seqCacheBytes, "KV cache working copy"))
                            .segment();
                    cacheSlotV[s] = own(workingTier.allocate(working * seqCacheBytes, "KV cache working copy"))
                            .segment();
                }
                xSlot[s] = own(tiers.device().allocate(gbs * promptLen * rowBytes, "hidden working copy")).segment();
            }
            int sequences = batches.stream().mapToInt(List::size).sum();
            int slots = fused ? Math.max(gbs, sequences) : gbs; // a fused decode step's head sees every sequence
            logits = own(tiers.device().allocate((long) slots * config.vocabSize() * F, "logits")).segment();
            tokenRows = own(tiers.device().allocate((long) gbs * promptLen * config.wordEmbedProjDim() * F,
                    "gathered token embeddings")).segment();
            fusedX = fused ? own(tiers.device().allocate(sequences * rowBytes, "hidden states of a fused step"))
                    .segment() : null;
            int rows = Math.max(gbs * promptLen, fused ? sequences : 0);
            MemorySegment scratch = own(tiers.device().allocate(OptForward.scratchBytes(config, rows, slots),
                    "compute scratch")).segment();
            forward = new OptForward(config, engine.kernels(), engine.quantized(), engine.cacheAttention(),
                    SegmentAllocator.slicingAllocator(scratch), rows, slots);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    /** Bytes of KV cache and activations this block placed on each tier: {cache[3], activations[3]}. */
    long[][] realisedBytes() {
        long[][] out = new long[2][3];
        for (TierKind kind : TierKind.values()) {
            for (int k = 0; k < hidden.length; k++) {
                for (int l = 0; l < config.numLayers(); l++) {
                    out[0][kind.ordinal()] += keys[l][k].bytesOn(kind) + values[l][k].bytesOn(kind);
                }
                out[1][kind.ordinal()] += hidden[k].bytesOn(kind);
            }
        }
        return out;
    }

    @Override
    public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception ignored) {
                // closing buffers does not fail; keep freeing the rest
            }
        }
        owned.clear();
    }
}
