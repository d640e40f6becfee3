package io.flexstream.quant;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The benchmark runs end to end on tiny shapes and prints machine, bytes ratio and both kernels' numbers. */
class QuantBenchmarkTest {

    @Test
    void smallRunPrintsTheTable() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        QuantBenchmark.Result[] results = QuantBenchmark.run(new PrintStream(bytes, true, StandardCharsets.UTF_8), 2,
                128, new int[]{64}, new int[]{1, 20}, 0.05);
        String text = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(2, results.length);
        assertTrue(text.contains("machine: ") && text.contains("0.281x of fp16"), text);
        for (QuantBenchmark.Result r : results) {
            assertTrue(r.quantGflops() > 0 && r.fp32Gflops() > 0, text);
        }
    }

    @Test
    void kvRunPrintsBothRates() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        double[] t = QuantBenchmark.runKv(new PrintStream(bytes, true, StandardCharsets.UTF_8), 2, 64, 16, 0.05);
        String text = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(t[0] > 0 && t[1] > 0 && text.contains("cache 0.281x of fp16"), text);
    }
}
