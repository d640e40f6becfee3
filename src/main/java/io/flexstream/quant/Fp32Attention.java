package io.flexstream.quant;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fp32 baseline of {@link QuantBenchmark#runKv}: the same two attention reads as {@link QuantizedKvBlock#scores}
 * and {@link QuantizedKvBlock#weightedSum}, with the same loop structure, over an uncompressed [pos][hidden] array.
 * Benchmark only; headDim must be a multiple of the lane count.
 */
final class Fp32Attention {

    private static final VectorSpecies<Float> F = NibbleKernels.F;
    private static final int L = NibbleKernels.L;

    private Fp32Attention() {
    }

    static void scores(float[] q, int qOff, float[] k, int hidden, int headOff, int headDim, int len, float[] out) {
        float[] lanes = new float[L];
        for (int pos = 0; pos < len; pos++) {
            FloatVector acc = FloatVector.zero(F);
            int base = pos * hidden + headOff;
            for (int d = 0; d < headDim; d += L) {
                acc = FloatVector.fromArray(F, q, qOff + d).fma(FloatVector.fromArray(F, k, base + d), acc);
            }
            acc.intoArray(lanes, 0);
            out[pos] = NibbleKernels.sum(lanes, 0);
        }
    }

    static void weightedSum(float[] p, float[] v, int hidden, int headOff, int headDim, int len, float[] out) {
        float[] acc = new float[headDim];
        for (int pos = 0; pos < len; pos++) {
            FloatVector w = FloatVector.broadcast(F, p[pos]);
            int base = pos * hidden + headOff;
            for (int d = 0; d < headDim; d += L) {
                FloatVector.fromArray(F, v, base + d).fma(w, FloatVector.fromArray(F, acc, d)).intoArray(acc, d);
            }
        }
        System.arraycopy(acc, 0, out, headOff, headDim);
    }
}
