package io.flexstream.engine;

import io.flexstream.kernel.Kernels;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptLayerWeights;
import io.flexstream.model.OptWeights;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

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

    private final OptConfig config;
    private final OptWeights weights;
    private final Kernels kernels;
    private final int hidden;
    private final int embedDim;
    private final float queryScale;

    // Scratch, sized for maxRows rows.
    private final MemorySegment x;      // residual stream [rows, hidden]
    private final MemorySegment y;      // normalised input of a sub-block [rows, hidden]
    private final MemorySegment q;
    private final MemorySegment k;
    private final MemorySegment v;
    private final MemorySegment attn;
    private final MemorySegment ffn;    // [rows, ffnDim]
    private final MemorySegment embed;  // [rows, embedDim], only when project_in exists
    private final MemorySegment last;   // [slots, hidden] last positions
    private final MemorySegment lastProjected; // [slots, embedDim]

    OptForward(OptWeights weights, Kernels kernels, Arena arena, int maxRows, int maxSlots) {
        this.config = weights.config();
        this.weights = weights;
        this.kernels = kernels;
        this.hidden = config.hiddenSize();
        this.embedDim = config.wordEmbedProjDim();
        this.queryScale = (float) (1.0 / Math.sqrt(config.headDim()));
        long rowBytes = (long) maxRows * hidden * F;
        x = arena.allocate(rowBytes, 64);
        y = arena.allocate(rowBytes, 64);
        q = arena.allocate(rowBytes, 64);
        k = arena.allocate(rowBytes, 64);
        v = arena.allocate(rowBytes, 64);
        attn = arena.allocate(rowBytes, 64);
        ffn = arena.allocate((long) maxRows * config.ffnDim() * F, 64);
        embed = weights.projectIn() == null ? null : arena.allocate((long) maxRows * embedDim * F, 64);
        last = arena.allocate((long) maxSlots * hidden * F, 64);
        lastProjected = arena.allocate((long) maxSlots * embedDim * F, 64);
    }

    /**
     * Runs {@code slotCount} sequences of {@code qLen} tokens each through the model, appending their keys and values
     * to the cache at positions [kvLen - qLen, kvLen), and writes the logits of each sequence's last position to
     * {@code logits} ([slotCount, vocab]).
     *
     * @param tokens    token ids, slot-major ([slotCount][qLen])
     * @param positions position ids as OPT counts them (0 = first real token, -1 = padding), same layout
     */
    void forward(KvCache cache, int firstSlot, int slotCount, int qLen, int kvLen, int[] tokens, int[] positions,
                 MemorySegment logits) {
        int rows = slotCount * qLen;
        embed(tokens, positions, rows);
        for (int l = 0; l < config.numLayers(); l++) {
            layer(weights.layers().get(l), l, cache, firstSlot, slotCount, qLen, kvLen, rows);
        }
        // Only the last position of each sequence is sampled: gather those rows before the head.
        for (int s = 0; s < slotCount; s++) {
            MemorySegment.copy(x, ((long) s * qLen + qLen - 1) * hidden * F, last, (long) s * hidden * F, hidden * F);
        }
        // Hugging Face gives the decoder a final LayerNorm exactly when the layers are pre-LN (not opt-350m).
        if (config.doLayerNormBefore()) {
            kernels.layerNorm(last, weights.finalLayerNormWeight(), weights.finalLayerNormBias(), last, slotCount,
                    hidden, LAYER_NORM_EPS);
        }
        MemorySegment head = last;
        if (weights.projectOut() != null) {
            kernels.linear(last, weights.projectOut(), null, lastProjected, slotCount, embedDim, hidden);
            head = lastProjected;
        }
        kernels.linear(head, weights.lmHead(), null, logits, slotCount, config.vocabSize(), embedDim);
    }

    private void embed(int[] tokens, int[] positions, int rows) {
        MemorySegment target = weights.projectIn() == null ? x : embed;
        long embedRow = (long) embedDim * F;
        for (int r = 0; r < rows; r++) {
            MemorySegment.copy(weights.embedTokens(), tokens[r] * embedRow, target, r * embedRow, embedRow);
        }
        if (weights.projectIn() != null) {
            kernels.linear(embed, weights.projectIn(), null, x, rows, hidden, embedDim);
        }
        // Positions: OPT's table is offset by 2, so padding (-1) reads row 1 and the first real token row 2.
        long hiddenRow = (long) hidden * F;
        for (int r = 0; r < rows; r++) {
            MemorySegment.copy(weights.embedPositions(), (positions[r] + 2L) * hiddenRow, y, r * hiddenRow, hiddenRow);
        }
        kernels.add(x, y, (long) rows * hidden);
    }

    private void layer(OptLayerWeights w, int layerIndex, KvCache cache, int firstSlot, int slotCount, int qLen,
                       int kvLen, int rows) {
        long n = (long) rows * hidden;
        boolean preNorm = config.doLayerNormBefore();
        MemorySegment attnInput = x;
        if (preNorm) {
            kernels.layerNorm(x, w.attnLayerNormWeight(), w.attnLayerNormBias(), y, rows, hidden, LAYER_NORM_EPS);
            attnInput = y;
        }
        kernels.linear(attnInput, w.qWeight(), w.qBias(), q, rows, hidden, hidden);
        kernels.scale(q, n, queryScale);
        kernels.linear(attnInput, w.kWeight(), w.kBias(), k, rows, hidden, hidden);
        kernels.linear(attnInput, w.vWeight(), w.vBias(), v, rows, hidden, hidden);
        for (int s = 0; s < slotCount; s++) {
            cache.write(layerIndex, firstSlot + s, kvLen - qLen, k, v, (long) s * qLen, qLen);
        }
        kernels.attention(q, cache.keys(layerIndex, firstSlot, slotCount), cache.values(layerIndex, firstSlot, slotCount),
                cache.valid(firstSlot, slotCount), attn, slotCount, qLen, kvLen, cache.capacity(),
                config.numHeads(), config.headDim());
        kernels.linear(attn, w.outWeight(), w.outBias(), y, rows, hidden, hidden);
        kernels.add(x, y, n);
        if (!preNorm) {
            kernels.layerNorm(x, w.attnLayerNormWeight(), w.attnLayerNormBias(), x, rows, hidden, LAYER_NORM_EPS);
        }
        MemorySegment mlpInput = x;
        if (preNorm) {
            kernels.layerNorm(x, w.finalLayerNormWeight(), w.finalLayerNormBias(), y, rows, hidden, LAYER_NORM_EPS);
            mlpInput = y;
        }
        kernels.linear(mlpInput, w.fc1Weight(), w.fc1Bias(), ffn, rows, config.ffnDim(), hidden);
        kernels.relu(ffn, (long) rows * config.ffnDim());
        kernels.linear(ffn, w.fc2Weight(), w.fc2Bias(), attn, rows, hidden, config.ffnDim());
        kernels.add(x, attn, n);
        if (!preNorm) {
            kernels.layerNorm(x, w.finalLayerNormWeight(), w.finalLayerNormBias(), x, rows, hidden, LAYER_NORM_EPS);
        }
    }

    /** Reads one row of a logits buffer into a Java array for sampling. */
    static void readRow(MemorySegment logits, int row, float[] into) {
        MemorySegment.copy(logits, ValueLayout.JAVA_FLOAT, (long) row * into.length * F, into, 0, into.length);
    }
}
