package io.flexstream.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * All weights of an OPT model as row-major fp32 arrays in native byte order, allocated from the caller's arena (so
 * they live exactly as long as it; use a shared or global arena, kernels read from several threads).
 *
 * @param embedTokens           [V, wepd]
 * @param embedPositions        [maxPos + 2, h]; position p of a sequence reads row p + 2
 * @param projectIn             [h, wepd], or null when wepd = h
 * @param projectOut            [wepd, h], or null when wepd = h
 * @param finalLayerNormWeight  [h] the decoder's final LayerNorm gamma; null for post-LN models (opt-350m) or
 *                              without elementwise affine
 * @param finalLayerNormBias    [h] its beta; null when absent
 * @param lmHead                [V, wepd]; the very same segment as embedTokens when tied (no lm_head.weight stored)
 * @param layers                one entry per decoder layer
 */
public record OptWeights(OptConfig config, MemorySegment embedTokens, MemorySegment embedPositions,
                         MemorySegment projectIn, MemorySegment projectOut,
                         MemorySegment finalLayerNormWeight, MemorySegment finalLayerNormBias,
                         MemorySegment lmHead, List<OptLayerWeights> layers) {

    /** Byte alignment of every allocated tensor: a cache line, so vector loads never straddle one at row 0. */
    static final long ALIGNMENT = 64;

    public OptWeights {
        layers = List.copyOf(layers);
    }

    /** Whether the output projection reuses the token embedding. */
    public boolean tiedLmHead() {
        return lmHead == embedTokens;
    }

    /** Distinct parameters held (a tied lm_head counted once). */
    public long parameterCount() {
        return bytes() / Float.BYTES;
    }

    /** Off-heap bytes the fp32 weights occupy (a tied lm_head counted once). */
    public long bytes() {
        Set<MemorySegment> distinct = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        long total = 0;
        for (MemorySegment s : tensors().values()) {
            if (distinct.add(s)) {
                total += s.byteSize();
            }
        }
        return total;
    }

    /** Canonical tensor name (no "model." prefix) to segment; lm_head.weight listed only when untied. */
    public Map<String, MemorySegment> tensors() {
        Map<String, MemorySegment> m = new LinkedHashMap<>();
        m.put("decoder.embed_tokens.weight", embedTokens);
        m.put("decoder.embed_positions.weight", embedPositions);
        if (projectIn != null) {
            m.put("decoder.project_in.weight", projectIn);
            m.put("decoder.project_out.weight", projectOut);
        }
        if (finalLayerNormWeight != null) {
            m.put("decoder.final_layer_norm.weight", finalLayerNormWeight);
        }
        if (finalLayerNormBias != null) {
            m.put("decoder.final_layer_norm.bias", finalLayerNormBias);
        }
        for (int i = 0; i < layers.size(); i++) {
            m.putAll(layers.get(i).byName(i));
        }
        if (!tiedLmHead()) {
            m.put(OptTensorLayout.LM_HEAD, lmHead);
        }
        return m;
    }

    /**
     * Loads and validates every tensor {@code ckpt.config()} calls for. F16 and BF16 are widened to fp32 in parallel
     * chunks straight from the mapping into {@code arena}; F32 is copied too (a plain memcpy), so the weights never
     * depend on the checkpoint staying open. Nothing passes through the Java heap.
     *
     * @throws CheckpointException for a missing or misshaped tensor, naming the tensor, the file and the config
     */
    public static OptWeights load(Checkpoint ckpt, Arena arena) {
        OptConfig c = ckpt.config();
        Map<String, MemorySegment> loaded = new HashMap<>();
        for (OptTensorLayout.Entry e : validate(ckpt)) {
            SafetensorsTensor t = ckpt.tensor(e.name());
            MemorySegment out = arena.allocate(e.elementCount() * Float.BYTES, ALIGNMENT);
            Fp32Conversion.toF32(t.dtype(), t.data(), out, e.elementCount());
            loaded.put(e.name(), out);
        }
        return assemble(c, loaded::get);
    }

    /**
     * Checks, without reading any data, that every tensor the config calls for is present with the right shape; an
     * lm_head.weight, when stored, must be [V, wepd] too.
     *
     * @return the expected tensors, lm_head included when stored (untied)
     * @throws CheckpointException for the first missing or misshaped tensor
     */
    public static List<OptTensorLayout.Entry> validate(Checkpoint ckpt) {
        OptConfig c = ckpt.config();
        List<OptTensorLayout.Entry> layout = OptTensorLayout.of(c, ckpt.has(OptTensorLayout.LM_HEAD));
        for (OptTensorLayout.Entry e : layout) {
            if (!ckpt.has(e.name())) {
                throw new CheckpointException("checkpoint " + ckpt.dir() + ": missing tensor " + e.name()
                        + " (expected shape " + e.shapeString() + " for " + dims(c) + ")");
            }
            SafetensorsTensor t = ckpt.tensor(e.name());
            if (!Arrays.equals(t.shape(), e.shape())) {
                throw new CheckpointException("checkpoint " + ckpt.dir() + ": tensor " + t.name() + " has shape "
                        + t.shapeString() + ", expected " + e.shapeString() + " for " + dims(c) + " (file "
                        + t.file() + ")");
            }
        }
        return layout;
    }

    /**
     * In-memory random weights with the initialisation documented on {@link RandomInit} (peaked next-token
     * distributions); lm_head is tied. The same seed gives the same values as {@link TinyModel#write}.
     */
    public static OptWeights random(OptConfig config, long seed, Arena arena) {
        Map<String, MemorySegment> made = new HashMap<>();
        for (OptTensorLayout.Entry e : OptTensorLayout.of(config, false)) {
            MemorySegment out = arena.allocate(e.elementCount() * Float.BYTES, ALIGNMENT);
            RandomInit.fill(config, e, seed, out);
            made.put(e.name(), out);
        }
        return assemble(config, made::get);
    }

    /** Builds the record from canonical names; lm_head falls back to the token embedding (tied). */
    private static OptWeights assemble(OptConfig c, Function<String, MemorySegment> get) {
        List<OptLayerWeights> layers = new ArrayList<>(c.numLayers());
        for (int i = 0; i < c.numLayers(); i++) {
            layers.add(OptLayerWeights.from(i, get));
        }
        MemorySegment embed = get.apply("decoder.embed_tokens.weight");
        MemorySegment head = get.apply(OptTensorLayout.LM_HEAD);
        return new OptWeights(c, embed, get.apply("decoder.embed_positions.weight"),
                get.apply("decoder.project_in.weight"), get.apply("decoder.project_out.weight"),
                get.apply("decoder.final_layer_norm.weight"), get.apply("decoder.final_layer_norm.bias"),
                head == null ? embed : head, layers);
    }

    private static String dims(OptConfig c) {
        return "hidden_size=" + c.hiddenSize() + ", ffn_dim=" + c.ffnDim() + ", vocab_size=" + c.vocabSize()
                + ", word_embed_proj_dim=" + c.wordEmbedProjDim() + ", max_position_embeddings="
                + c.maxPositionEmbeddings();
    }
}
