package io.flexstream.engine;

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
 * working buffer before it computes.
 */
final class WeightStore implements AutoCloseable {

    private final List<PackedLayer> layouts = new ArrayList<>();
    private final List<RangeStore> stores = new ArrayList<>();
    private final boolean compressed;
    private final int hidden;
    private final int ffn;

    /**
     * @param compress store the decoder layers' six matrices 4-bit compressed (packed codes and fp16 metadata side
     *                 by side in the layer's bytes), so they move between tiers compressed
     * @param compressedLayers with {@code compress}: the layers already compressed (the on-disk cache), or null to
     *                 quantize them here
     */
    WeightStore(OptWeights source, Tiers tiers, TierShares shares, boolean compress,
                List<DecoderWeights> compressedLayers) {
        this.compressed = compress;
        this.hidden = source.config().hiddenSize();
        this.ffn = source.config().ffnDim();
        try {
            List<List<MemorySegment>> layers = scheduleLayers(source);
            for (int j = 0; j < layers.size(); j++) {
                boolean decoder = j > 0 && j < layers.size() - 1;
                try (Arena staging = Arena.ofConfined()) {
                    List<MemorySegment> tensors = compress && decoder
                            ? compressedLayer(source.layers().get(j - 1), compressedLayers == null ? null
                                    : compressedLayers.get(j - 1), staging) : layers.get(j);
                    PackedLayer layout = new PackedLayer(tensors);
                    RangeStore store = new RangeStore(tiers, layout.bytes(), shares, "weights of schedule layer " + j);
                    stores.add(store);
                    layout.pack(tensors, store);
                    layouts.add(layout);
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** A decoder layer's tensors with each matrix replaced by its packed codes and metadata. */
    private List<MemorySegment> compressedLayer(OptLayerWeights l, DecoderWeights cached, Arena staging) {
        DecoderWeights q = cached != null ? cached : DecoderWeights.quantize(l, hidden, ffn, staging);
        List<MemorySegment> out = new ArrayList<>(22);
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
        return out;
    }

    private static void addMatrix(List<MemorySegment> out, LinearWeight w) {
        QuantizedMatrix m = ((LinearWeight.Quantized) w).weight();
        out.add(m.packed());
        out.add(m.metadata());
    }

    /** The decoder layer whose tensors {@link #bind} or {@link #resident} returned. */
    DecoderWeights decoder(List<MemorySegment> t) {
        if (!compressed) {
            return DecoderWeights.dense(decoderLayer(t));
        }
        return new DecoderWeights(matrix(t, 0, hidden, hidden), t.get(2), matrix(t, 3, hidden, hidden), t.get(5),
                matrix(t, 6, hidden, hidden), t.get(8), matrix(t, 9, hidden, hidden), t.get(11), t.get(12), t.get(13),
                matrix(t, 14, ffn, hidden), t.get(16), matrix(t, 17, hidden, ffn), t.get(19), t.get(20), t.get(21));
    }

    private static LinearWeight matrix(List<MemorySegment> t, int at, int rows, int cols) {
        return new LinearWeight.Quantized(new QuantizedMatrix(rows, cols, DecoderWeights.GROUP, t.get(at),
                t.get(at + 1)));
    }

    /** Embedding, decoder layers, head: the tensors of each schedule layer in a fixed order. */
    static List<List<MemorySegment>> scheduleLayers(OptWeights w) {
        List<List<MemorySegment>> out = new ArrayList<>();
        out.add(Arrays.asList(w.embedTokens(), w.embedPositions(), w.projectIn()));
        for (OptLayerWeights l : w.layers()) {
            out.add(Arrays.asList(l.qWeight(), l.qBias(), l.kWeight(), l.kBias(), l.vWeight(), l.vBias(),
                    l.outWeight(), l.outBias(), l.attnLayerNormWeight(), l.attnLayerNormBias(), l.fc1Weight(),
                    l.fc1Bias(), l.fc2Weight(), l.fc2Bias(), l.finalLayerNormWeight(), l.finalLayerNormBias()));
        }
        out.add(Arrays.asList(w.finalLayerNormWeight(), w.finalLayerNormBias(), w.projectOut(), w.lmHead()));
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
        return whole == null ? null : layouts.get(layer).bind(whole);
    }

    List<MemorySegment> bind(int layer, MemorySegment working) {
        return layouts.get(layer).bind(working);
    }

    /** Bytes of the largest layer that needs a working buffer (0 when every layer lives on the device). */
    long maxWorkingBytes() {
        long max = 0;
        for (RangeStore s : stores) {
            if (s.wholeOnDevice() == null) {
                max = Math.max(max, s.bytes());
            }
        }
        return max;
    }

    /**
     * Loads piece {@code piece} of {@code pieces} equal byte ranges of a layer into its working buffer, so that the
     * load can be spread over the steps of a block.
     */
    void loadPiece(int layer, int piece, int pieces, MemorySegment working) {
        RangeStore store = stores.get(layer);
        // The token embedding table is never loaded whole: a step needs only its batches' rows (gatherTokenRows).
        long start = layer == 0 ? layouts.get(0).offset(1) : 0;
        long unit = RangeStore.UNIT;
        long units = (store.bytes() - start + unit - 1) / unit;
        long from = Math.min(store.bytes(), start + units * piece / pieces * unit);
        long to = Math.min(store.bytes(), start + units * (piece + 1) / pieces * unit);
        if (to > from) {
            store.read(from, working, from, to - from);
        }
    }

    /**
     * Copies the token embedding rows of {@code tokens} ([embedDim] floats each) into {@code out}, row r at
     * {@code r * rowBytes}, wherever the table lives. FlexGen loads the whole table every token step; a step uses a
     * few rows of it, and for OPT-1.3B the table is a quarter of all the bytes a step would read.
     */
    void gatherTokenRows(int[] tokens, int rows, long rowBytes, MemorySegment out) {
        RangeStore store = stores.get(0);
        for (int r = 0; r < rows; r++) {
            store.read(tokens[r] * rowBytes, out, r * rowBytes, rowBytes);
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
            sum += s.bytesOn(kind, j == 0 ? layouts.get(0).offset(1) : 0, s.bytes());
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
