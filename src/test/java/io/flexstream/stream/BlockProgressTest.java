package io.flexstream.stream;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Every decode step reaches the metrics; the log is rate-limited (not asserted: it only logs). */
class BlockProgressTest {

    @Test
    void decodeStepsReachTheMetrics() {
        List<String> steps = new ArrayList<>();
        StreamMetrics metrics = new StreamMetrics() {
            @Override
            public void blockProgress(int step, int maxSteps) {
                steps.add(step + "/" + maxSteps);
            }
        };
        BlockProgress progress = new BlockProgress(7, 4, 0, metrics);     // interval 0: every step would log
        progress.prefillDone(4, 40, 1_000_000);
        for (int step = 1; step <= 3; step++) {
            progress.decodeStep(step, 3, 4, 1_000_000);
        }
        assertEquals(List.of("1/3", "2/3", "3/3"), steps);
        // A long interval logs nothing but still reports.
        new BlockProgress(8, 4, Long.MAX_VALUE, metrics).decodeStep(1, 10, 4, 1);
        assertEquals(4, steps.size());
    }
}
