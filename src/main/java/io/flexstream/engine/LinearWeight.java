package io.flexstream.engine;

import io.flexstream.quant.QuantizedMatrix;

import java.lang.foreign.MemorySegment;

/** The weight of a linear layer as the engine holds it: fp32, or 4-bit group-wise compressed (FlexGen's scheme). */
sealed interface LinearWeight {

    /** fp32 [out, in], row-major. */
    record Dense(MemorySegment weight) implements LinearWeight {
    }

    /** Groups of 64 along the input dimension, dequantized inside the matrix product. */
    record Quantized(QuantizedMatrix weight) implements LinearWeight {
    }
}
