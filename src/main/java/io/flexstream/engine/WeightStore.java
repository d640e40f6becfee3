package io.flexstream.engine;

import io.flexstream.kernel.HalfFloats;
import io.flexstream.model.OptLayerWeights;
import io.flexstream.model.OptWeights;
import io.flexstream.quant.QuantizedMatrix;
import io.flexstream.tier.RangeStore;
import io.flexstream.tier.TierKind;
import io.flexstream.tier.TierShares;
import io.flexstream.tier.Tiers;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The model's weights placed over the tiers, one packed byte array per schedule layer: the input embedding
 * (layer 0), the decoder layers (1..L), and the output head (L + 1), as FlexGen schedules them. Each layer is cut by
 * the policy's weight shares; a layer entirely on the device is used in place, any other is assembled into a device
 * working buffer before it computes. In {@link WeightFormat#FP16} every layer is stored as halves and widened into
 * the working buffer (so even a device-resident layer is loaded); in {@link WeightFormat#INT4} the decoder matrices
 * and the tied token table / head are stored 4-bit (packed codes and fp16 metadata side by side in the layer's bytes)
 * and move between tiers compressed.
 */
final class WeightStore implements AutoCloseable {

    private final List<PackedLayer> layouts = new ArrayList<>();
    private final List<RangeStore> stores = new ArrayList<>();
    private final WeightFormat format;
    private final int hidden;
    private final int ffn;
    private final int vocab;
    private final int embedDim;

    /**
     * @param format           how the layers are stored and moved: fp32, fp16 (widened as they load) or 4-bit
     *                         (packed codes and fp16 metadata side by side in the layer's bytes)
     * @param compressedLayers with {@code INT4}: the decoder layers already compressed (the on-disk cache), or null
     *                         to quantize them here
     */
    WeightStore(OptWeights source, Tiers tiers, TierShares shares, WeightFormat format,
                List<DecoderWeights> compressedLayers) {
        this.format = format;
        this.hidden = source.config().hiddenSize();
        this.ffn = source.config().ffnDim();
        this.vocab = source.config().vocabSize();
        this.embedDim = source.config().wordEmbedProjDim();
        try {
            int last = source.config().numLayers() + 1;
            for (int j = 0; j <= last; j++) {
                try (Arena staging = Arena.ofConfined()) {
                    List<MemorySegment> tensors = format == WeightFormat.INT4
                            ? compressedLayer(source, j, compressedLayers, staging) : scheduleLayer(source, j);
                    PackedLayer layout = new PackedLayer(tensors);
                    long stored = format == WeightFormat.FP16 ? layout.bytes() / 2 : layout.bytes();
                    RangeStore store = new RangeStore(tiers, stored, shares, "weights of schedule layer " + j);
                    stores.add(store);
                    if (format == WeightFormat.FP16) {
                        layout.packHalf(tensors, store);
                    } else {
                        layout.pack(tensors, store);
                    }
                    layouts.add(layout);
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Schedule layer j with each matrix replaced by its packed codes and metadata (1-D tensors stay fp32). */
    private List<MemorySegment> compressedLayer(OptWeights w, int j, List<DecoderWeights> cached, Arena staging) {
        List<MemorySegment> out = new ArrayList<>(22);
        if (j == 0) {
            addMatrix(out, DecoderWeights.quantizeMatrix(w.embedTokens(), vocab, embedDim, staging));
            out.add(w.embedPositions());
            out.add(w.projectIn());
        } else if (j == w.layers().size() + 1) {
            out.add(w.finalLayerNormWeight());
            out.add(w.finalLayerNormBias());
            out.add(w.projectOut());
            addMatrix(out, DecoderWeights.quantizeMatrix(w.lmHead(), vocab, embedDim, staging));
        } else {
            OptLayerWeights l = w.layers().get(j - 1);
            DecoderWeights q = cached != null ? cached.get(j - 1) : DecoderWeights.quantize(l, hidden, ffn, staging);
            addMatrix(out, q.q());
            out.add(l.qBias());
            addMatrix(out, q.k());
            out.add(l.kBias());
            addMatrix(out, q.v());
            out.add(l.vBias());
            addMatrix(out, q.out());
            out.add(l.outBias());
            out.add(l.attnLayerNormWeight());
            out.add(l.attnLayerNormBias());
            addMatrix(out, q.fc1());
            out.add(l.fc1Bias());
            addMatrix(out, q.fc2());
            out.add(l.fc2Bias());
            out.add(l.finalLayerNormWeight());
            out.add(l.finalLayerNormBias());
        }
        return out;
    }

    private static void addMatrix(List<MemorySegment> out, LinearWeight w) {
        QuantizedMatrix m = ((LinearWeight.Quantized) w).weight();
        out.add(m.packed());
        out.add(m.metadata());
    }

    /** The decoder layer whose tensors {@link #bind} or {@link #resident} returned. */
    DecoderWeights decoder(List<MemorySegment> t) {
        if (format != WeightFormat.INT4) {
            return DecoderWeights.dense(decoderLayer(t));
        }
        return new DecoderWeights(matrix(t, 0, hidden, hidden), t.get(2), matrix(t, 3, hidden, hidden), t.get(5),
                matrix(t, 6, hidden, hidden), t.get(8), matrix(t, 9, hidden, hidden), t.get(11), t.get(12), t.get(13),
                matrix(t, 14, ffn, hidden), t.get(16), matrix(t, 17, hidden, ffn), t.get(19), t.get(20), t.get(21));
    }

    /** The output head's matrix in the head layer's tensors (after final LayerNorm weight, bias and project_out). */
    LinearWeight lmHead(List<MemorySegment> t) {
        return format == WeightFormat.INT4 ? matrix(t, 3, vocab, embedDim) : new LinearWeight.Dense(t.get(3));
    }

    /** The position embeddings in the embedding layer's tensors (after the token table, one or two tensors). */
    MemorySegment embedPositions(List<MemorySegment> t) {
        return t.get(tableTensors());
    }

    /** project_in in the embedding layer's tensors, or null. */
    MemorySegment projectIn(List<MemorySegment> t) {
        return t.get(tableTensors() + 1);
    }

    private int tableTensors() {
        return format == WeightFormat.INT4 ? 2 : 1;
    }

    private static LinearWeight matrix(List<MemorySegment> t, int at, int rows, int cols) {
        return new LinearWeight.Quantized(new QuantizedMatrix(rows, cols, DecoderWeights.GROUP, t.get(at),
                t.get(at + 1)));
    }

    /** Embedding, decoder layer j or head: the fp32 tensors of schedule layer j in a fixed order. */
    private static List<MemorySegment> scheduleLayer(OptWeights w, int j) {
        if (j == 0) {
            return Arrays.asList(w.embedTokens(), w.embedPositions(), w.projectIn());
        }
        if (j == w.layers().size() + 1) {
            return Arrays.asList(w.finalLayerNormWeight(), w.finalLayerNormBias(), w.projectOut(), w.lmHead());
        }
        OptLayerWeights l = w.layers().get(j - 1);
        return Arrays.asList(l.qWeight(), l.qBias(), l.kWeight(), l.kBias(), l.vWeight(), l.vBias(),
                l.outWeight(), l.outBias(), l.attnLayerNormWeight(), l.attnLayerNormBias(), l.fc1Weight(),
                l.fc1Bias(), l.fc2Weight(), l.fc2Bias(), l.finalLayerNormWeight(), l.finalLayerNormBias());
    }

    /** Every schedule layer's fp32 tensors, in the order they are packed. */
    static List<List<MemorySegment>> scheduleLayers(OptWeights w) {
        List<List<MemorySegment>> out = new ArrayList<>();
        for (int j = 0; j <= w.layers().size() + 1; j++) {
            out.add(scheduleLayer(w, j));
        }
        return out;
    }

    private static OptLayerWeights decoderLayer(List<MemorySegment> t) {
        return new OptLayerWeights(t.get(0), t.get(1), t.get(2), t.get(3), t.get(4), t.get(5), t.get(6), t.get(7),
                t.get(8), t.get(9), t.get(10), t.get(11), t.get(12), t.get(13), t.get(14), t.get(15));
    }

    int layers() {
        return layouts.size();
    }

    /** The layer's tensors in place on the device, or null when it must be loaded into a working buffer. */
    List<MemorySegment> resident(int layer) {
        MemorySegment whole = stores.get(layer).wholeOnDevice();
        // fp16 halves are never computed on: even a device-resident layer is widened into a working buffer.
        return whole == null || format == WeightFormat.FP16 ? null : layouts.get(layer).bind(whole);
    }

    List<MemorySegment> bind(int layer, MemorySegment working) {
        return layouts.get(layer).bind(working);
    }

    /** Bytes of the largest layer that needs a working buffer (0 when every layer lives on the device). */
    long maxWorkingBytes() {
        long max = 0;
        for (int j = 0; j < stores.size(); j++) {
            if (resident(j) == null) {
                max = Math.max(max, layouts.get(j).bytes());
            }
        }
        return max;
    }

    /** Where the layout's byte {@code offset} (of the fp32 or 4-bit layout) lies in the stored bytes. */
    private long stored(long offset) {
        return format == WeightFormat.FP16 ? offset / 2 : offset;
    }

    /**
     * Loads piece {@code piece} of {@code pieces} equal byte ranges of a layer into its working buffer, so that the
     * load can be spread over the steps of a block.
     */
    void loadPiece(int layer, int piece, int pieces, MemorySegment working) {
        RangeStore store = stores.get(layer);
        long bytes = layouts.get(layer).bytes();
        // The token embedding table is never loaded whole: a step needs only its batches' rows (gatherTokenRows).
        long start = layer == 0 ? layouts.get(0).offset(tableTensors()) : 0;
        long unit = RangeStore.UNIT;
        long units = (bytes - start + unit - 1) / unit;
        long from = Math.min(bytes, start + units * piece / pieces * unit);
        long to = Math.min(bytes, start + units * (piece + 1) / pieces * unit);
        if (to <= from) {
            return;
        }
        if (format == WeightFormat.FP16) {
            store.read(stored(from), stored(to) - stored(from), (src, srcOffset, at, n) ->
                    HalfFloats.widen(src, srcOffset, working, from + 2 * at, n / 2));
        } else {
            store.read(from, working, from, to - from);
        }
    }

    /**
     * Writes the fp32 token embedding rows of {@code tokens} ([embedDim] floats each) into {@code out}, row r at
     * {@code r * embedDim * 4}, reading only those rows from wherever the table lives (widened from fp16, or
     * dequantized from 4 bits). FlexGen loads the whole table every token step; a step uses a few rows of it, and
     * for OPT-1.3B the table is a quarter of all the bytes a step would read.
     */
    void gatherTokenRows(int[] tokens, int rows, MemorySegment out) {
        RangeStore store = stores.get(0);
        long rowBytes = (long) embedDim * Float.BYTES;
        switch (format) {
            case FP32 -> {
                for (int r = 0; r < rows; r++) {
                    store.read(tokens[r] * rowBytes, out, r * rowBytes, rowBytes);
                }
            }
            case FP16 -> {
                for (int r = 0; r < rows; r++) {
                    long base = r * rowBytes;
                    store.read(tokens[r] * rowBytes / 2, rowBytes / 2, (src, srcOffset, at, n) ->
                            HalfFloats.widen(src, srcOffset, out, base + 2 * at, n / 2));
                }
            }
            case INT4 -> {
                int groups = (embedDim + DecoderWeights.GROUP - 1) / DecoderWeights.GROUP;
                long packedRow = (long) groups * DecoderWeights.GROUP / 2;
                long metaRow = groups * 4L;
                long metaStart = layouts.get(0).offset(1);
                try (Arena scratch = Arena.ofConfined()) {
                    MemorySegment packed = scratch.allocate(packedRow, 64);
                    MemorySegment meta = scratch.allocate(metaRow, 64);
                    LinearWeight row = new LinearWeight.Quantized(new QuantizedMatrix(1, embedDim,
                            DecoderWeights.GROUP, packed, meta));
                    for (int r = 0; r < rows; r++) {
                        store.read(tokens[r] * packedRow, packed, 0, packedRow);
                        store.read(metaStart + tokens[r] * metaRow, meta, 0, metaRow);
                        row.rowInto(0, embedDim, out, r * rowBytes);
                    }
                }
            }
        }
    }

    long bytesOn(TierKind kind) {
        long sum = 0;
        for (RangeStore s : stores) {
            sum += s.bytesOn(kind);
        }
        return sum;
    }

    /** Bytes a token step reads from a tier for the weight loads (the token table's rows aside). */
    long loadedPerStepFrom(TierKind kind) {
        long sum = 0;
        for (int j = 0; j < stores.size(); j++) {
            RangeStore s = stores.get(j);
            sum += s.bytesOn(kind, j == 0 ? stored(layouts.get(0).offset(tableTensors())) : 0, s.bytes());
        }
        return sum;
    }

    long totalBytes() {
        long sum = 0;
        for (RangeStore s : stores) {
            sum += s.bytes();
        }
        return sum;
    }

    @Override
    public void close() {
        for (RangeStore s : stores) {
            s.close();
        }
        stores.clear();
    }
}
