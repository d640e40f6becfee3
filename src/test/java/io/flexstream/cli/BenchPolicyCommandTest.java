package io.flexstream.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The validation benchmark's machinery on a one-layer model: every workload searches, runs its chosen policy and a
 * grid on the real tiers (weights or cache really on the O_DIRECT disk) and reports a row. The numbers themselves are
 * the benchmark's business, not the test's.
 */
class BenchPolicyCommandTest {

    @Test
    void everyWorkloadReportsPredictionMeasurementAndTheGridsBest(@TempDir Path spill) {
        PrintStream original = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true));
        int exit;
        try {
            exit = new CommandLine(new BenchPolicyCommand()).execute("--hardware", "cpu-2core-estimate",
                    "--layers", "1", "--prompt-len", "8", "--gen-len", "2", "--max-block", "8", "--passes", "2",
                    "--offload-dir", spill.toString());
        } finally {
            System.setOut(original);
        }
        String out = captured.toString();
        System.out.print(out);
        assertEquals(0, exit, out);
        for (String workload : new String[] {"memory", "weights-on-disk", "cache-on-disk"}) {
            Matcher row = Pattern.compile("(?m)^\\| " + workload + " \\| (\\d+)x(\\d+) \\[([^]]*)] \\| ([0-9.]+) \\| "
                    + "([0-9.]+) \\| [-+]\\d+% \\| .+ \\| \\d+% \\|$").matcher(out);
            assertTrue(row.find(), workload + " row in:\n" + out);
            assertTrue(Double.parseDouble(row.group(4)) > 0 && Double.parseDouble(row.group(5)) > 0, row.group());
            String[] percent = row.group(3).trim().split("\\s+");
            if (workload.equals("weights-on-disk")) {
                assertEquals(0, Double.parseDouble(percent[0]) + Double.parseDouble(percent[1]), 1e-9, row.group());
            }
            if (workload.equals("cache-on-disk")) {
                assertEquals(0, Double.parseDouble(percent[2]) + Double.parseDouble(percent[3]), 1e-9, row.group());
            }
        }
        assertTrue(out.contains("targets: |prediction error| <= 25%"), out);
        assertTrue(out.contains("== pass 2 of 2") && out.contains("medians of 2 passes per policy"), out);
    }
}
