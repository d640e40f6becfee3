package io.flexstream.engine;

import java.lang.foreign.MemorySegment;

/**
 * A contiguous run of sequences of one GPU batch whose keys and values for one layer sit in one buffer, laid out
 * [slots][capacity][row] (a row: hidden fp32 values, or one compressed {@link io.flexstream.quant.KvRowFormat} row)
 * with a [slots][capacity] validity mask. Attention runs once per part, so that sequences whose cache lives on
 * different tiers (or is computed where it lives) need no gathering.
 *
 * @param firstSlot first sequence of the batch this part covers
 * @param slots     sequences in the part
 * @param keys      key rows of those sequences
 * @param values    value rows
 * @param valid     mask, 1 for a real token
 * @param capacity  positions per sequence in {@code keys}/{@code values}
 */
record CachePart(int firstSlot, int slots, MemorySegment keys, MemorySegment values, MemorySegment valid,
                 int capacity) {
}
