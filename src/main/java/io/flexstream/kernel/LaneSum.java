package io.flexstream.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Horizontal sum of a vector accumulator in one fixed order, as a pairwise fold: with the lanes stored in an array,
 * repeat {@code lane[i] += lane[i + half]} for i below half, halving until one lane is left.
 *
 * <p>Why not {@code reduceLanes(ADD)}: its Javadoc leaves the order of a floating-point add reduction to the
 * implementation, and the interpreter's fallback (sequential) and C2's intrinsic (a tree) may differ. A kernel whose
 * result depends on whether its caller was JIT-compiled yet is not batch invariant. The fold is plain float adds
 * in a fixed order, so it gives the same bits everywhere.
 *
 * <p>Used by layerNorm's row sums and attention's scores (dot products over headDim); linear is arranged so that
 * each output is one fma chain and needs no horizontal sum at all. Also the home of the species every kernel uses.
 *
 * <p>Why the lanes go through an array: callers store their accumulators with {@code intoArray} (an intrinsic) and
 * fold them here with scalars. Passing a {@code FloatVector} to a method C2 does not inline forces it to box the
 * vector, and a boxed vector live across a loop phi made an early linear kernel ~4x slower in our measurements.
 */
final class LaneSum {

    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    static final int LANES = SPECIES.length();

    private LaneSum() {
    }

    /** Folds LANES floats starting at {@code offset}; overwrites them. */
    static float fold(float[] lanes, int offset) {
        for (int half = LANES / 2; half > 0; half /= 2) {
            for (int i = 0; i < half; i++) {
                lanes[offset + i] += lanes[offset + i + half];
            }
        }
        return lanes[offset];
    }
}
