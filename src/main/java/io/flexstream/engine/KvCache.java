package io.flexstream.engine;

import io.flexstream.model.OptConfig;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The key/value cache of one batch of sequences: per layer, K and V as [slots][capacity][row], plus one
 * [slots][capacity] validity mask shared by all layers (1 = a real token, 0 = left padding or not yet written). A row
 * is one position's keys (or values) of every head: {@code hidden} fp32 values, or one
 * {@link io.flexstream.quant.KvRowFormat} row when the cache is compressed ({@link #rowBytes}).
 *
 * <p>Slots are compacted when sequences finish ({@link #compact}), so that decode work shrinks with the batch.
 */
final class KvCache {

    private static final long F = Float.BYTES;

    private final int layers;
    private final int capacity;
    private final long rowBytes;
    private final MemorySegment[] keys;
    private final MemorySegment[] values;
    private final MemorySegment valid;
    private int slots;

    /** @param rowBytes bytes of one position of one layer's keys (or values), see {@link #rowBytes} */
    KvCache(Arena arena, int layers, int slots, int capacity, long rowBytes) {
        this.layers = layers;
        this.slots = slots;
        this.capacity = capacity;
        this.rowBytes = rowBytes;
        this.keys = new MemorySegment[layers];
        this.values = new MemorySegment[layers];
        long bytes = (long) slots * capacity * rowBytes;
        for (int l = 0; l < layers; l++) {
            keys[l] = arena.allocate(bytes, 64);
            values[l] = arena.allocate(bytes, 64);
        }
        valid = arena.allocate((long) slots * capacity * F, 64);
    }

    /**
     * Bytes of one cached position of one layer's keys (or values): fp32 [hidden], or the compressed row of
     * {@code format} when it is not null.
     */
    static long rowBytes(OptConfig config, io.flexstream.quant.KvRowFormat format) {
        return format == null ? (long) config.hiddenSize() * F : format.rowBytes();
    }

    /** Bytes of keys and values allocated for every layer (the mask aside). */
    long bytes() {
        return 2L * layers * keys[0].byteSize();
    }

    int capacity() {
        return capacity;
    }

    int slots() {
        return slots;
    }

    /** Keys of layer {@code layer} for slots [first, first + count). */
    MemorySegment keys(int layer, int first, int count) {
        return keys[layer].asSlice(slotOffset(first), slotOffset(count));
    }

    MemorySegment values(int layer, int first, int count) {
        return values[layer].asSlice(slotOffset(first), slotOffset(count));
    }

    MemorySegment valid(int first, int count) {
        return valid.asSlice((long) first * capacity * F, (long) count * capacity * F);
    }

    void setValid(int slot, int position, boolean isValid) {
        valid.set(ValueLayout.JAVA_FLOAT, ((long) slot * capacity + position) * F, isValid ? 1f : 0f);
    }

    /**
     * Keeps only the listed slots, moved to the front in the given order: slot {@code keep[i]} becomes slot i.
     * {@code keep} must be increasing, so that a move never overwrites a slot still to be read.
     */
    void compact(int[] keep, int filledPositions) {
        long filledBytes = filledPositions * rowBytes;
        for (int i = 0; i < keep.length; i++) {
            int from = keep[i];
            if (from == i) {
                continue;
            }
            for (int l = 0; l < layers; l++) {
                MemorySegment.copy(keys[l], slotOffset(from), keys[l], slotOffset(i), filledBytes);
                MemorySegment.copy(values[l], slotOffset(from), values[l], slotOffset(i), filledBytes);
            }
            MemorySegment.copy(valid, (long) from * capacity * F, valid, (long) i * capacity * F,
                    (long) capacity * F);
        }
        slots = keep.length;
    }

    private long slotOffset(int slot) {
        return (long) slot * capacity * rowBytes;
    }
}
