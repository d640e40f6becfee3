package io.flexstream.engine;

import io.flexstream.quant.QuantizedMatrix;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** The weight of a linear layer as the engine holds it: fp32, or 4-bit group-wise compressed (FlexGen's scheme). */
sealed interface LinearWeight {

    /**
     * Row {@code row} ({@code cols} fp32 values) into {@code out} at byte {@code outOffset}: the token embedding
     * lookup, since OPT ties its token table to the output head.
     */
    void rowInto(int row, int cols, MemorySegment out, long outOffset);

    /** fp32 [out, in], row-major. */
    record Dense(MemorySegment weight) implements LinearWeight {
        @Override
        public void rowInto(int row, int cols, MemorySegment out, long outOffset) {
            long rowBytes = (long) cols * Float.BYTES;
            MemorySegment.copy(weight, row * rowBytes, out, outOffset, rowBytes);
        }
    }

    /** Groups of 64 along the input dimension, dequantized inside the matrix product. */
    record Quantized(QuantizedMatrix weight) implements LinearWeight {
        @Override
        public void rowInto(int row, int cols, MemorySegment out, long outOffset) {
            float[] values = new float[cols];
            weight.dequantizeRow(row, values);
            MemorySegment.copy(values, 0, out, ValueLayout.JAVA_FLOAT_UNALIGNED, outOffset, cols);
        }
    }
}
