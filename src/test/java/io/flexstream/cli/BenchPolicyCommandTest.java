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

    /** Runs {@code bench policy} with these arguments; its standard output (also echoed), after asserting exit 0. */
    private static String run(String... args) {
        PrintStream original = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true));
        int exit;
        try {
            exit = new CommandLine(new BenchPolicyCommand()).execute(args);
        } finally {
            System.setOut(original);
        }
        String out = captured.toString();
        System.out.print(out);
        assertEquals(0, exit, out);
        return out;
    }

    /** A workload's result row: policy (groups 1-3), both predictions (4, 6), measured tokens/s (5). */
    private static Matcher row(String out, String workload) {
        Matcher row = Pattern.compile("(?m)^\\| " + workload + " \\| (\\d+)x(\\d+) \\[([^]]*)] \\| ([0-9.]+) \\| "
                + "([0-9.]+) \\| [-+]\\d+% \\| ([0-9.]+) \\| [-+]\\d+% \\| .+ \\| \\d+% \\|$").matcher(out);
        assertTrue(row.find(), workload + " row in:\n" + out);
        return row;
    }

    @Test
    void everyWorkloadReportsPredictionMeasurementAndTheGridsBest(@TempDir Path spill) {
        String out = run("--hardware", "cpu-2core-estimate", "--layers", "1", "--prompt-len", "8", "--gen-len", "2",
                "--max-block", "8", "--passes", "2", "--offload-dir", spill.toString());
        for (String workload : new String[] {"memory", "weights-on-disk", "cache-on-disk"}) {
            Matcher row = row(out, workload);
            assertTrue(Double.parseDouble(row.group(4)) > 0 && Double.parseDouble(row.group(5)) > 0, row.group());
            // A given profile is not re-measured, so the prediction for the runs' hardware is the same one except
            // for the disk rate of the weights' large reads.
            if (!workload.equals("weights-on-disk")) {
                assertEquals(row.group(4), row.group(6), row.group());
            }
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
        assertTrue(!out.contains("the machine again"), out);
    }

    /** Without --hardware the machine is profiled before the runs and after each pass (about 20 s per profile). */
    @Test
    void aMeasuredRunProfilesTheMachineAgainAfterEveryPass(@TempDir Path spill) {
        String out = run("--layers", "1", "--prompt-len", "8", "--gen-len", "2", "--max-block", "8", "--passes", "1",
                "--workloads", "memory", "--offload-dir", spill.toString());
        assertTrue(out.contains("the machine again after pass 1"), out);
        assertTrue(out.contains("the machine over the runs (2 profiles"), out);
        Matcher row = row(out, "memory");
        assertTrue(Double.parseDouble(row.group(6)) > 0, row.group());
        assertTrue(out.contains("with the runs' hardware: "), out);
        assertTrue(!out.contains("weights-on-disk") && !out.contains("| cache-on-disk"), out);
    }
}
