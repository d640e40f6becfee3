package io.flexstream.stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The benchmark runs both passes and reports comparable numbers. With an engine stand-in that takes 500 ms per block
 * the Kafka overhead should be small; the bound here is loose because the build machine is shared.
 */
@Timeout(180)
class PipelineBenchmarkTest {

    @Test
    void reportsEngineAndPipelineThroughputAndTheirRatio() throws Exception {
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PipelineBenchmark.Result r = PipelineBenchmark.run(new EchoGenerator(256, 500, null),
                new PipelineBenchmark.Options(48, 8, 8, 2, 2, Duration.ofSeconds(60), null),
                new PrintStream(captured, true));
        String report = captured.toString();
        System.out.print(report);
        assertEquals(r.engineTokens(), r.pipelineTokens(), "the same prompts, the same tokens");
        // Loose: the build machine is shared (load averages above 10 were seen), so only gross regressions fail.
        assertTrue(r.ratio() > 0.3 && r.ratio() < 1.2, report);
        assertTrue(report.contains("ratio pipeline / engine"), report);
        assertTrue(r.engineBusy() > 0.5 && r.engineBusy() <= 1.0, report);
        assertEquals(3, r.engine().size(), "engine passes around each of the 2 Kafka passes");
        assertEquals(2, r.pipeline().size());
        assertEquals(48L * 8, r.pipelineTokens(), "each Kafka pass counts only its own completions");
    }

    /**
     * With {@code bootstrapServers} the benchmark uses that cluster (here a broker the test starts) and starts none of
     * its own; two runs in a row against the same cluster both complete and count their own tokens.
     */
    @Test
    void runsAgainstAClusterItDidNotStartRunAfterRun() throws Exception {
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.builder().start()) {
            for (int run = 0; run < 2; run++) {
                ByteArrayOutputStream captured = new ByteArrayOutputStream();
                PipelineBenchmark.Result r = PipelineBenchmark.run(new EchoGenerator(256, 100, null),
                        new PipelineBenchmark.Options(16, 8, 4, 2, 1, Duration.ofSeconds(60),
                                broker.bootstrapServers()), new PrintStream(captured, true));
                String report = captured.toString();
                assertTrue(report.contains("broker: " + broker.bootstrapServers()), report);
                assertEquals(16L * 4, r.pipelineTokens(), "run " + run + " counts only its own completions");
            }
        }
    }
}
