package io.flexstream.engine;

import io.flexstream.model.OptLayerWeights;
import io.flexstream.model.OptWeights;
import io.flexstream.tier.RangeStore;
import io.flexstream.tier.TierKind;
import io.flexstream.tier.TierShares;
import io.flexstream.tier.Tiers;

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

    WeightStore(OptWeights source, Tiers tiers, TierShares shares) {
        try {
            List<List<MemorySegment>> layers = scheduleLayers(source);
            for (int j = 0; j < layers.size(); j++) {
                PackedLayer layout = new PackedLayer(layers.get(j));
                RangeStore store = new RangeStore(tiers, layout.bytes(), shares, "weights of schedule layer " + j);
                stores.add(store);
                layout.pack(layers.get(j), store);
                layouts.add(layout);
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
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

    static OptLayerWeights decoderLayer(List<MemorySegment> t) {
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
        long unit = RangeStore.UNIT;
        long units = (store.bytes() + unit - 1) / unit;
        long from = Math.min(store.bytes(), units * piece / pieces * unit);
        long to = Math.min(store.bytes(), units * (piece + 1) / pieces * unit);
        if (to > from) {
            store.read(from, working, from, to - from);
        }
    }

    long bytesOn(TierKind kind) {
        long sum = 0;
        for (RangeStore s : stores) {
            sum += s.bytesOn(kind);
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
