package io.flexstream.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.SplittableRandom;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/** The eight-at-once fold gives, lane for lane, the bits of the one-vector fold (attention's scores rely on it). */
class LaneSumTest {

    /** Bit-reversed item order of foldEight's arguments. */
    private static final int[] SLOT_ITEM = {0, 4, 2, 6, 1, 5, 3, 7};

    @Test
    void foldEightMatchesFoldBitForBit() {
        assumeTrue(LaneSum.FOLDS_EIGHT, "foldEight is used with 8- and 16-lane vectors; this CPU has "
                + LaneSum.LANES);
        var random = new SplittableRandom(42);
        for (int trial = 0; trial < 2000; trial++) {
            float[][] items = new float[8][LaneSum.LANES];
            for (float[] item : items) {
                for (int lane = 0; lane < LaneSum.LANES; lane++) {
                    item[lane] = value(random, trial);
                }
            }
            FloatVector[] slots = new FloatVector[8];
            for (int slot = 0; slot < 8; slot++) {
                slots[slot] = FloatVector.fromArray(LaneSum.SPECIES, items[SLOT_ITEM[slot]], 0);
            }
            float[] folded = LaneSum.foldEight(slots[0], slots[1], slots[2], slots[3], slots[4], slots[5], slots[6],
                    slots[7]).toArray();
            for (int item = 0; item < 8; item++) {
                float expected = LaneSum.fold(items[item].clone(), 0);
                assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(folded[item]),
                        "trial " + trial + " item " + item);
            }
        }
    }

    /** Mostly values of mixed magnitude (rounding differs with the order), sometimes signed zeros and infinities. */
    private static float value(SplittableRandom random, int trial) {
        if (trial % 10 == 0) {
            float[] special = {0f, -0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE, 1e30f};
            return special[random.nextInt(special.length)];
        }
        return (float) (random.nextDouble(-1, 1) * Math.pow(10, random.nextInt(-3, 4)));
    }
}
