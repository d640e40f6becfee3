package io.flexstream.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.flexstream.cli.FlexStreamCli;
import io.flexstream.kernel.cuda.CudaKernels;
import io.flexstream.kernel.cuda.CudaProbe;
import io.flexstream.kernel.cuda.CudaUnavailableException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Backend selection on whatever machine runs the tests: auto lands on the GPU where the probe found one and on the
 * CPU (with the reason logged) where it did not; forcing cuda without a usable GPU is a clear error. The
 * {@code flexstream.cuda.disable} switch exercises the fallback and the error on GPU machines too.
 */
class BackendsTest {

    private final List<String> log = new ArrayList<>();

    @AfterEach
    void clear() {
        System.clearProperty("flexstream.cuda.disable");
    }

    private static void close(Kernels kernels) throws Exception {
        if (kernels instanceof AutoCloseable c) {
            c.close();
        }
    }

    @Test
    void cpuIsTheCpuBackend() throws Exception {
        Kernels k = Backends.create(Backends.Choice.CPU, 1, 0, false, log::add);
        assertInstanceOf(CpuKernels.class, k);
        assertTrue(log.getFirst().startsWith("backend: cpu-vector"), log.toString());
        close(k);
    }

    @Test
    void autoUsesTheGpuWhenTheProbeFoundOneElseFallsBackWithTheReason() throws Exception {
        Kernels k = Backends.create(Backends.Choice.AUTO, 1, 0, false, log::add);
        try {
            if (CudaProbe.probe() instanceof CudaProbe.Unavailable(String reason)) {
                assertInstanceOf(CpuKernels.class, k);
                assertTrue(log.getFirst().contains("CUDA unavailable: " + reason), log.toString());
            } else {
                assertInstanceOf(CudaKernels.class, k);
                assertTrue(log.getFirst().startsWith("backend: cuda on "), log.toString());
            }
        } finally {
            close(k);
        }
    }

    @Test
    void autoFallsBackWhenCudaIsDisabled() throws Exception {
        System.setProperty("flexstream.cuda.disable", "true");
        Kernels k = Backends.create(Backends.Choice.AUTO, 1, 0, false, log::add);
        assertInstanceOf(CpuKernels.class, k);
        assertTrue(log.getFirst().contains("CUDA unavailable: disabled by -Dflexstream.cuda.disable=true"),
                log.toString());
        close(k);
    }

    @Test
    void forcedCudaWithoutAGpuNamesTheCauseAndTheFix() {
        assumeTrue(CudaProbe.probe() instanceof CudaProbe.Unavailable,
                "skipped: a GPU is usable here, so --backend cuda works (see the disabled variant below)");
        assertForcedCudaFails(((CudaProbe.Unavailable) CudaProbe.probe()).reason());
    }

    @Test
    void forcedCudaWhenDisabledNamesTheCauseAndTheFix() {
        System.setProperty("flexstream.cuda.disable", "true");
        assertForcedCudaFails("disabled by -Dflexstream.cuda.disable=true");
    }

    private void assertForcedCudaFails(String reason) {
        var e = assertThrows(CudaUnavailableException.class,
                () -> Backends.create(Backends.Choice.CUDA, 1, 0, false, log::add));
        assertTrue(e.getMessage().contains(reason), e.getMessage());
        assertTrue(e.getMessage().contains("Fix:") && e.getMessage().contains("--backend cpu"), e.getMessage());
        assertTrue(log.isEmpty(), "nothing was chosen, so nothing is logged: " + log);
    }

    @Test
    void choicesParseAnyCaseAndRejectOthersListingTheValidOnes() {
        assertEquals(Backends.Choice.CUDA, Backends.Choice.parse("CUDA"));
        assertEquals(Backends.Choice.AUTO, Backends.Choice.parse(" auto "));
        var e = assertThrows(IllegalArgumentException.class, () -> Backends.Choice.parse("gpu"));
        assertTrue(e.getMessage().contains("auto, cpu or cuda"), e.getMessage());
    }

    @Test
    void theCliReportsAForcedUnavailableBackendAsAUsageErrorNotAStackTrace(@TempDir Path dir) throws Exception {
        System.setProperty("flexstream.cuda.disable", "true");
        Path input = Files.writeString(dir.resolve("in.jsonl"), "{\"id\":\"1\",\"prompt\":\"hi\"}\n");
        StringWriter err = new StringWriter();
        var cli = FlexStreamCli.commandLine();
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute("generate", "--backend", "cuda", "--model", dir.resolve("absent").toString(),
                "--input", input.toString(), "--output", dir.resolve("out.jsonl").toString());
        assertEquals(2, code, err.toString());
        assertTrue(err.toString().contains("flexstream generate: --backend cuda was requested but the GPU cannot be "
                + "used: disabled by -Dflexstream.cuda.disable=true"), err.toString());
        assertTrue(!err.toString().contains("\tat "), "no stack trace expected:\n" + err);
    }
}
