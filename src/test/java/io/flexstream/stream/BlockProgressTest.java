package io.flexstream.stream;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every decode step reaches the metrics; log lines name the step and, from the offloading engine, the layer. */
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

    @Test
    void layerProgressNamesTheLayerAndTheStep() {
        List<String> lines = new ArrayList<>();
        BlockProgress progress = new BlockProgress(3, 8, 0, StreamMetrics.NONE, lines::add);
        progress.layerDone(0, 1, 26);
        progress.prefillDone(8, 128, 1_000_000);
        progress.layerDone(1, 25, 26);
        progress.decodeStep(1, 31, 8, 1_000_000);
        progress.layerDone(2, 12, 26);
        assertTrue(lines.get(0).startsWith("batch 3 (8 prompts): prefill, layer 2/26 done"), lines.get(0));
        assertTrue(lines.get(0).contains("prefill about"), lines.get(0));
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("batch 3 (8 prompts): token step 1, layer 26/26 done") && !l.contains("left")), "no estimate before a decode step has a time: " + lines);
        assertTrue(lines.getLast().startsWith("batch 3 (8 prompts): token step 2/31, layer 13/26 done"),
                lines.getLast());
        assertTrue(lines.getLast().contains("s left"), lines.getLast());
        // Rate-limited: a long interval logs nothing.
        List<String> quiet = new ArrayList<>();
        BlockProgress slow = new BlockProgress(4, 8, Long.MAX_VALUE, StreamMetrics.NONE, quiet::add);
        slow.layerDone(0, 0, 26);
        slow.decodeStep(1, 31, 8, 1);
        assertTrue(quiet.isEmpty(), quiet.toString());
    }
}
