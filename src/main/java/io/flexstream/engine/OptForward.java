package io.flexstream.engine;

import io.flexstream.kernel.Kernels;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.quant.KvRowFormat;
import io.flexstream.quant.QuantizedAttention;
import io.flexstream.quant.QuantizedLinear;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * OPT's forward pass (Hugging Face semantics, see shared/docs/OPT.md) over rows of hidden states, with every
 * numeric operation delegated to a {@link Kernels} backend. Supports pre-LayerNorm models and the post-LayerNorm
 * opt-350m variant with its project_in/project_out.
 *
 * <p>A call works on a group of consecutive cache slots; each slot contributes {@code qLen} rows (the padded prompt
 * in prefill, one token in decode). Scratch buffers are sized once for the largest group.
 */
final class OptForward {

    private static final long F = Float.BYTES;
    private static final float LAYER_NORM_EPS = 1e-5f;
    private static final long ALIGN = 64;

    private final OptConfig config;
    private final Kernels kernels;
    private final QuantizedLinear quantized; // null when no weight is compressed
    private final QuantizedAttention cacheAttention; // null when the KV cache is fp32
    private final KvRowFormat cacheFormat;           // null when the KV cache is fp32
    private final long cacheRowBytes;
    private final int hidden;
    private final int embedDim;
    private final float queryScale;

    // Scratch, sized for maxRows token rows and maxSlots sequences.
    private final MemorySegment y;      // normalised input of a sub-block, or the position embeddings [rows, hidden]
    private final MemorySegment q;
    private final MemorySegment k;
    private final MemorySegment v;
    private final MemorySegment attn;
    private final MemorySegment ffn;    // [rows, ffnDim]
    private final MemorySegment embed;  // [rows, embedDim], only when project_in exists
    private final MemorySegment last;   // [slots, hidden] last positions
    private final MemorySegment lastProjected; // [slots, embedDim]

    /**
     * Scratch is carved from {@code memory}, which must hold {@link #scratchBytes} bytes. {@code quantized} computes
     * the products of compressed weights and may be null when there are none. {@code cacheAttention} is non-null
     * exactly when the KV cache is compressed ({@link #cacheFormat}): new keys and values are then quantized as
     * they are written and attention reads them compressed.
     */
    OptForward(OptConfig config, Kernels kernels, QuantizedLinear quantized, QuantizedAttention cacheAttention,
               SegmentAllocator memory, int maxRows, int maxSlots) {
        this.config = config;
        this.kernels = kernels;
        this.quantized = quantized;
        this.cacheAttention = cacheAttention;
        this.cacheFormat = cacheAttention == null ? null : cacheFormat(config);
        this.cacheRowBytes = KvCache.rowBytes(config, cacheFormat);
        this.hidden = config.hiddenSize();
        this.embedDim = config.wordEmbedProjDim();
        this.queryScale = (float) (1.0 / Math.sqrt(config.headDim()));
        long rowBytes = (long) maxRows * hidden * F;
        y = memory.allocate(rowBytes, ALIGN);
        q = memory.allocate(rowBytes, ALIGN);
        k = memory.allocate(rowBytes, ALIGN);
        v = memory.allocate(rowBytes, ALIGN);
        attn = memory.allocate(rowBytes, ALIGN);
        ffn = memory.allocate((long) maxRows * config.ffnDim() * F, ALIGN);
        embed = hasProjections(config) ? memory.allocate((long) maxRows * embedDim * F, ALIGN) : null;
        last = memory.allocate((long) maxSlots * hidden * F, ALIGN);
        lastProjected = memory.allocate((long) maxSlots * embedDim * F, ALIGN);
    }

    /** FlexGen's grouping of the cache of this model: per token, per head, groups of 64 along the head dimension. */
    static KvRowFormat cacheFormat(OptConfig config) {
        return KvRowFormat.of(config.numHeads(), config.headDim());
    }

    /** Bytes of scratch a forward pass over {@code maxRows} rows and {@code maxSlots} sequences needs. */
    static long scratchBytes(OptConfig config, int maxRows, int maxSlots) {
        long rows = (long) maxRows * (5L * config.hiddenSize() + config.ffnDim()
                + (hasProjections(config) ? config.wordEmbedProjDim() : 0));
        long slots = (long) maxSlots * (config.hiddenSize() + config.wordEmbedProjDim());
        return (rows + slots) * F + 10 * ALIGN;
    }

    private static boolean hasProjections(OptConfig config) {
        return config.wordEmbedProjDim() != config.hiddenSize();
    }

    /**
     * Runs {@code slotCount} sequences of {@code qLen} tokens each through the whole model with an in-memory cache,
     * appending their keys and values at positions [kvLen - qLen, kvLen), and writes the logits of each sequence's
     * last position to {@code logits} ([slotCount, vocab]).
     *
     * @param tokens    token ids, slot-major ([slotCount][qLen])
     * @param tokenTable the token embedding table as a [vocab, embedDim] matrix whose rows are looked up (fp32 or
     *                  4-bit; OPT ties it to the head, so usually the same weight as {@code lmHead})
     * @param lmHead    the output head [vocab, embedDim]
     * @param positions position ids as OPT counts them (0 = first real token, -1 = padding), same layout
     * @param x         residual stream scratch, [slotCount * qLen, hidden]
     */
    void forward(OptWeights weights, LinearWeight tokenTable, LinearWeight lmHead, List<DecoderWeights> layers,
                 KvCache cache, int firstSlot, int slotCount, int qLen, int kvLen, int[] tokens, int[] positions,
                 MemorySegment x, MemorySegment logits) {
        int rows = slotCount * qLen;
        embed(tokenTable, weights.embedPositions(), weights.projectIn(), tokens, positions, rows, x);
        for (int l = 0; l < config.numLayers(); l++) {
            List<CachePart> parts = List.of(new CachePart(0, slotCount, cache.keys(l, firstSlot, slotCount),
                    cache.values(l, firstSlot, slotCount), cache.valid(firstSlot, slotCount), cache.capacity()));
            layer(layers.get(l), x, slotCount, qLen, kvLen, parts);
        }
        head(weights.finalLayerNormWeight(), weights.finalLayerNormBias(), weights.projectOut(), lmHead,
                x, slotCount, qLen, logits);
    }

    /** Token plus position embeddings (and project_in) of {@code rows} tokens into {@code out} ([rows, hidden]). */
    void embed(LinearWeight tokenTable, MemorySegment embedPositions, MemorySegment projectIn, int[] tokens,
               int[] positions, int rows, MemorySegment out) {
        MemorySegment target = projectIn == null ? out : embed;
        long embedRow = (long) embedDim * F;
        for (int r = 0; r < rows; r++) {
            tokenTable.rowInto(tokens[r], embedDim, target, r * embedRow);
        }
        if (projectIn != null) {
            kernels.linear(embed, projectIn, null, out, rows, hidden, embedDim);
        }
        // Positions: OPT's table is offset by 2, so padding (-1) reads row 1 and the first real token row 2.
        long hiddenRow = (long) hidden * F;
        for (int r = 0; r < rows; r++) {
            MemorySegment.copy(embedPositions, (positions[r] + 2L) * hiddenRow, y, r * hiddenRow, hiddenRow);
        }
        kernels.add(out, y, (long) rows * hidden);
    }

    /**
     * The output head on the last position of each of {@code slotCount} sequences of {@code qLen} rows in
     * {@code hiddenStates}: final LayerNorm (pre-LN models), project_out if present, then the logits.
     */
    void head(MemorySegment lnWeight, MemorySegment lnBias, MemorySegment projectOut, LinearWeight lmHead,
              MemorySegment hiddenStates, int slotCount, int qLen, MemorySegment logits) {
        for (int s = 0; s < slotCount; s++) {
            MemorySegment.copy(hiddenStates, ((long) s * qLen + qLen - 1) * hidden * F, last, (long) s * hidden * F,
                    hidden * F);
        }
        // Hugging Face gives the decoder a final LayerNorm exactly when the layers are pre-LN (not opt-350m).
        if (config.doLayerNormBefore()) {
            kernels.layerNorm(last, lnWeight, lnBias, last, slotCount, hidden, LAYER_NORM_EPS);
        }
        MemorySegment headInput = last;
        if (projectOut != null) {
            kernels.linear(last, projectOut, null, lastProjected, slotCount, embedDim, hidden);
            headInput = lastProjected;
        }
        linear(headInput, lmHead, null, logits, slotCount, config.vocabSize(), embedDim);
    }

    /**
     * One decoder layer, in place on {@code x} ([slotCount * qLen, hidden]). The new keys and values are written
     * into every cache part at positions [kvLen - qLen, kvLen) before attention reads them.
     */
    void layer(DecoderWeights w, MemorySegment x, int slotCount, int qLen, int kvLen, List<CachePart> cacheParts) {
        int rows = slotCount * qLen;
        long n = (long) rows * hidden;
        boolean preNorm = config.doLayerNormBefore();
        MemorySegment attnInput = x;
        if (preNorm) {
            kernels.layerNorm(x, w.attnLayerNormWeight(), w.attnLayerNormBias(), y, rows, hidden, LAYER_NORM_EPS);
            attnInput = y;
        }
        linear(attnInput, w.q(), w.qBias(), q, rows, hidden, hidden);
        kernels.scale(q, n, queryScale);
        linear(attnInput, w.k(), w.kBias(), k, rows, hidden, hidden);
        linear(attnInput, w.v(), w.vBias(), v, rows, hidden, hidden);
        long rowBytes = (long) hidden * F;
        for (CachePart part : cacheParts) {
            long seqBytes = part.capacity() * cacheRowBytes;
            for (int s = 0; s < part.slots(); s++) {
                long src = (long) (part.firstSlot() + s) * qLen * rowBytes;
                long dst = s * seqBytes + (long) (kvLen - qLen) * cacheRowBytes;
                if (cacheFormat == null) {
                    MemorySegment.copy(k, src, part.keys(), dst, qLen * rowBytes);
                    MemorySegment.copy(v, src, part.values(), dst, qLen * rowBytes);
                } else {
                    // Each new position is quantized once, on its own; older positions are never touched again.
                    for (int t = 0; t < qLen; t++) {
                        cacheFormat.quantize(k, src + t * rowBytes, part.keys(), dst + t * cacheRowBytes);
                        cacheFormat.quantize(v, src + t * rowBytes, part.values(), dst + t * cacheRowBytes);
                    }
                }
            }
            long rowsFrom = (long) part.firstSlot() * qLen * rowBytes;
            long partRows = (long) part.slots() * qLen * rowBytes;
            if (cacheFormat == null) {
                kernels.attention(q.asSlice(rowsFrom, partRows), part.keys(), part.values(), part.valid(),
                        attn.asSlice(rowsFrom, partRows), part.slots(), qLen, kvLen, part.capacity(),
                        config.numHeads(), config.headDim());
            } else {
                cacheAttention.attention(q.asSlice(rowsFrom, partRows), part.keys(), part.values(), part.valid(),
                        attn.asSlice(rowsFrom, partRows), part.slots(), qLen, kvLen, part.capacity(), cacheFormat);
            }
        }
        linear(attn, w.out(), w.outBias(), y, rows, hidden, hidden);
        kernels.add(x, y, n);
        if (!preNorm) {
            kernels.layerNorm(x, w.attnLayerNormWeight(), w.attnLayerNormBias(), x, rows, hidden, LAYER_NORM_EPS);
        }
        MemorySegment mlpInput = x;
        if (preNorm) {
            kernels.layerNorm(x, w.finalLayerNormWeight(), w.finalLayerNormBias(), y, rows, hidden, LAYER_NORM_EPS);
            mlpInput = y;
        }
        linear(mlpInput, w.fc1(), w.fc1Bias(), ffn, rows, config.ffnDim(), hidden);
        kernels.relu(ffn, (long) rows * config.ffnDim());
        linear(ffn, w.fc2(), w.fc2Bias(), attn, rows, hidden, config.ffnDim());
        kernels.add(x, attn, n);
        if (!preNorm) {
            kernels.layerNorm(x, w.finalLayerNormWeight(), w.finalLayerNormBias(), x, rows, hidden, LAYER_NORM_EPS);
        }
    }

    private void linear(MemorySegment in, LinearWeight weight, MemorySegment bias, MemorySegment out, int m, int n,
                        int k) {
        switch (weight) {
            case LinearWeight.Dense d -> kernels.linear(in, d.weight(), bias, out, m, n, k);
            case LinearWeight.Quantized q -> quantized.linear(in, q.weight(), bias, out, m, n, k);
        }
    }

    /** Reads one row of a logits buffer into a Java array for sampling. */
    static void readRow(MemorySegment logits, int row, float[] into) {
        MemorySegment.copy(logits, ValueLayout.JAVA_FLOAT, (long) row * into.length * F, into, 0, into.length);
    }
}
