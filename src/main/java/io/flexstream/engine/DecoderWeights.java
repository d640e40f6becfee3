package io.flexstream.engine;

import io.flexstream.model.OptLayerWeights;
import io.flexstream.quant.QuantizedMatrix;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * One decoder layer's weights as the forward pass uses them: the six matrices as {@link LinearWeight}s (fp32 or
 * 4-bit), biases and LayerNorm parameters always fp32 (FlexGen never compresses 1-D tensors either). Biases and
 * LayerNorm parameters may be null as in {@link OptLayerWeights}.
 */
record DecoderWeights(LinearWeight q, MemorySegment qBias, LinearWeight k, MemorySegment kBias,
                      LinearWeight v, MemorySegment vBias, LinearWeight out, MemorySegment outBias,
                      MemorySegment attnLayerNormWeight, MemorySegment attnLayerNormBias,
                      LinearWeight fc1, MemorySegment fc1Bias, LinearWeight fc2, MemorySegment fc2Bias,
                      MemorySegment finalLayerNormWeight, MemorySegment finalLayerNormBias) {

    /** Group size of FlexGen's 4-bit scheme. */
    static final int GROUP = 64;

    static DecoderWeights dense(OptLayerWeights w) {
        return new DecoderWeights(new LinearWeight.Dense(w.qWeight()), w.qBias(), new LinearWeight.Dense(w.kWeight()),
                w.kBias(), new LinearWeight.Dense(w.vWeight()), w.vBias(), new LinearWeight.Dense(w.outWeight()),
                w.outBias(), w.attnLayerNormWeight(), w.attnLayerNormBias(), new LinearWeight.Dense(w.fc1Weight()),
                w.fc1Bias(), new LinearWeight.Dense(w.fc2Weight()), w.fc2Bias(), w.finalLayerNormWeight(),
                w.finalLayerNormBias());
    }

    /** Compresses the six matrices of a layer into memory from {@code arena}. */
    static DecoderWeights quantize(OptLayerWeights w, int hidden, int ffn, Arena arena) {
        return new DecoderWeights(q(w.qWeight(), hidden, hidden, arena), w.qBias(), q(w.kWeight(), hidden, hidden, arena),
                w.kBias(), q(w.vWeight(), hidden, hidden, arena), w.vBias(), q(w.outWeight(), hidden, hidden, arena),
                w.outBias(), w.attnLayerNormWeight(), w.attnLayerNormBias(), q(w.fc1Weight(), ffn, hidden, arena),
                w.fc1Bias(), q(w.fc2Weight(), hidden, ffn, arena), w.fc2Bias(), w.finalLayerNormWeight(),
                w.finalLayerNormBias());
    }

    private static LinearWeight q(MemorySegment w, int rows, int cols, Arena arena) {
        return quantizeMatrix(w, rows, cols, arena);
    }

    /** Any fp32 matrix [rows, cols] compressed with FlexGen's scheme, groups along cols (the token table, the head). */
    static LinearWeight quantizeMatrix(MemorySegment w, int rows, int cols, Arena arena) {
        return new LinearWeight.Quantized(QuantizedMatrix.quantize(w, rows, cols, GROUP, arena));
    }
}
