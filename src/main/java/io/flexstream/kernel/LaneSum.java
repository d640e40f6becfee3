package io.flexstream.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
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

    /**
     * Whether {@link #foldEight} applies: to 8-lane vectors (AVX2's 256-bit floats) and to 16-lane ones (AVX-512),
     * whose first fold level it does within each vector before the 8-lane levels.
     */
    static final boolean FOLDS_EIGHT = LANES == 8 || LANES == 16;
    /** The 8-lane shape the levels of {@link #foldEight} work in. */
    private static final VectorSpecies<Float> EIGHT = FloatVector.SPECIES_256;
    // Lane patterns of the three 8-lane fold levels: which lanes the second operand supplies, and the swap that brings
    // each lane's partner (i + 4, i + 2, i + 1 in LaneSum.fold) next to it.
    private static final VectorMask<Float> UPPER_HALF =
            VectorMask.fromArray(EIGHT, new boolean[] {false, false, false, false, true, true, true, true}, 0);
    private static final VectorMask<Float> UPPER_PAIRS =
            VectorMask.fromArray(EIGHT, new boolean[] {false, false, true, true, false, false, true, true}, 0);
    private static final VectorMask<Float> ODD_LANES =
            VectorMask.fromArray(EIGHT, new boolean[] {false, true, false, true, false, true, false, true}, 0);
    private static final VectorShuffle<Float> SWAP_HALVES = VectorShuffle.fromValues(EIGHT, 4, 5, 6, 7, 0, 1, 2, 3);
    private static final VectorShuffle<Float> SWAP_PAIRS = VectorShuffle.fromValues(EIGHT, 2, 3, 0, 1, 6, 7, 4, 5);
    private static final VectorShuffle<Float> SWAP_NEIGHBOURS = VectorShuffle.fromValues(EIGHT, 1, 0, 3, 2, 5, 4, 7, 6);
    /** With 16 lanes: lane i's partner at fold's first level (i + 8), for every lane. Null otherwise. */
    private static final VectorShuffle<Float> SWAP_EIGHTS =
            LANES == 16 ? VectorShuffle.fromOp(SPECIES, i -> i ^ 8) : null;

    /**
     * Eight folds at once: lane i of the result is {@code fold} of the accumulator of item i, with the same bits,
     * where the eight accumulators arrive in bit-reversed item order (a0 = item 0, a1 = item 4, a2 = item 2, a3 =
     * item 6, a4 = item 1, a5 = item 5, a6 = item 3, a7 = item 7). Only when {@link #FOLDS_EIGHT}; the result has 8
     * lanes whatever the accumulators' width.
     *
     * <p>Each level pairs two vectors and, per lane, adds exactly the two values {@code fold} adds at that level
     * (lane i and lane i + half of the same item), so every item sees the same additions in the same tree; float
     * addition is commutative, so which operand comes first does not change the bits. Three levels halve 8 vectors
     * to one; the pairing interleaves the items, which the bit-reversed input order undoes. Seven blend-blend-swap-add
     * steps replace eight stores and 56 dependent scalar adds.
     */
    static FloatVector foldEight(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3,
                                 FloatVector a4, FloatVector a5, FloatVector a6, FloatVector a7) {
        if (LANES == 16) {
            a0 = firstLevel(a0);
            a1 = firstLevel(a1);
            a2 = firstLevel(a2);
            a3 = firstLevel(a3);
            a4 = firstLevel(a4);
            a5 = firstLevel(a5);
            a6 = firstLevel(a6);
            a7 = firstLevel(a7);
        }
        FloatVector b0 = pairUp(a0, a1, UPPER_HALF, SWAP_HALVES), b1 = pairUp(a2, a3, UPPER_HALF, SWAP_HALVES);
        FloatVector b2 = pairUp(a4, a5, UPPER_HALF, SWAP_HALVES), b3 = pairUp(a6, a7, UPPER_HALF, SWAP_HALVES);
        FloatVector c0 = pairUp(b0, b1, UPPER_PAIRS, SWAP_PAIRS), c1 = pairUp(b2, b3, UPPER_PAIRS, SWAP_PAIRS);
        return pairUp(c0, c1, ODD_LANES, SWAP_NEIGHBOURS);
    }

    /**
     * Fold's first level of a 16-lane accumulator, {@code lane[i] + lane[i + 8]} for i below 8, as an 8-lane vector:
     * the rest of its fold is the 8-lane one.
     */
    private static FloatVector firstLevel(FloatVector a) {
        return (FloatVector) a.add(a.rearrange(SWAP_EIGHTS)).reinterpretShape(EIGHT, 0);
    }

    /**
     * Lanes outside {@code second}: x[i] + x[partner(i)]; lanes in it: y[i] + y[partner(i)], where {@code swap}
     * maps each lane to its partner.
     */
    private static FloatVector pairUp(FloatVector x, FloatVector y, VectorMask<Float> second,
                                      VectorShuffle<Float> swap) {
        return x.blend(y, second).add(y.blend(x, second).rearrange(swap));
    }
}
