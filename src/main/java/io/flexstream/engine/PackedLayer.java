package io.flexstream.engine;

import io.flexstream.kernel.HalfFloats;
import io.flexstream.tier.RangeStore;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The tensors of one schedule layer packed back to back into one byte array (each at a 64-byte aligned offset), so
 * that the layer moves between tiers as one contiguous transfer and its placement can cut it anywhere. Absent
 * tensors (a model without biases) stay null.
 */
final class PackedLayer {

    private final long[] offsets;
    private final long[] sizes;
    private final long bytes;

    PackedLayer(List<MemorySegment> tensors) {
        offsets = new long[tensors.size()];
        sizes = new long[tensors.size()];
        long at = 0;
        for (int i = 0; i < tensors.size(); i++) {
            MemorySegment t = tensors.get(i);
            offsets[i] = at;
            sizes[i] = t == null ? -1 : t.byteSize();
            if (t != null) {
                at += roundUp(t.byteSize());
            }
        }
        bytes = at;
    }

    long bytes() {
        return bytes;
    }

    /** Byte offset of tensor {@code index} in the packed layer. */
    long offset(int index) {
        return offsets[index];
    }

    /** Copies the tensors into their places in {@code store}. */
    void pack(List<MemorySegment> tensors, RangeStore store) {
        for (int i = 0; i < tensors.size(); i++) {
            if (tensors.get(i) != null) {
                store.write(offsets[i], tensors.get(i), 0, sizes[i]);
            }
        }
    }

    /**
     * Copies the tensors, narrowed to IEEE fp16, into {@code store}, which holds half the bytes: the fp16 copy of the
     * fp32 layout, every offset halved (so a load widens it back into exactly this layout).
     */
    void packHalf(List<MemorySegment> tensors, RangeStore store) {
        try (Arena staging = Arena.ofConfined()) {
            MemorySegment half = staging.allocate(bytes / 2, RangeStore.UNIT);
            for (int i = 0; i < tensors.size(); i++) {
                if (tensors.get(i) != null) {
                    HalfFloats.narrow(tensors.get(i), 0, half, offsets[i] / 2, sizes[i] / Float.BYTES);
                }
            }
            store.write(0, half, 0, bytes / 2);
        }
    }

    /** Views of each tensor inside a packed copy of the layer that starts at {@code base}. */
    List<MemorySegment> bind(MemorySegment base) {
        List<MemorySegment> out = new ArrayList<>(offsets.length);
        for (int i = 0; i < offsets.length; i++) {
            out.add(sizes[i] < 0 ? null : base.asSlice(offsets[i], sizes[i]));
        }
        return Collections.unmodifiableList(out);
    }

    private static long roundUp(long n) {
        return (n + RangeStore.UNIT - 1) / RangeStore.UNIT * RangeStore.UNIT;
    }
}
