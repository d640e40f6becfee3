package io.flexstream.cli;

import io.flexstream.model.OptConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The protocol between {@code bench generate --pytorch} and its Python process, with stand-in interpreters (shell
 * scripts) so that the test needs no torch: the arguments it passes, one timed run per request, and the errors that
 * name the fix when the interpreter cannot run the script.
 */
class PyTorchBaselineTest {

    private static final OptConfig SHAPE = OptConfig.shape("opt-125m").withNumLayers(2);

    @Test
    void passesTheShapeAndReadsOneRunPerRequest(@TempDir Path dir) throws IOException {
        Path args = dir.resolve("args");
        Path python = interpreter(dir, """
                echo "$@" > %s
                echo '{"ready": true, "torch": "9.9", "threads": 2, "blas": "libfake.so"}'
                n=0
                while read line; do
                  n=$((n + 1))
                  echo "{\\"seconds\\": $n.5, \\"prefill\\": 0.5, \\"decode\\": $n}"
                done
                """.formatted(args));
        try (PyTorchBaseline baseline = PyTorchBaseline.start(python.toString(), SHAPE, 4, 16, 8, 2, 7,
                PyTorchBaseline.Linear.TUNED)) {
            assertEquals("PyTorch 9.9, 2 threads, --linear tuned, BLAS libfake.so", baseline.describe());
            assertEquals(new PyTorchBaseline.Run(1.5, 0.5, 1), baseline.run());
            assertEquals(new PyTorchBaseline.Run(2.5, 0.5, 2), baseline.run());
        }
        String passed = Files.readString(args);
        for (String expected : List.of("--hidden 768", "--layers 2", "--heads 12", "--ffn 3072", "--vocab 50272",
                "--batch 4", "--prompt-len 16", "--gen-len 8", "--threads 2", "--seed 7", "--linear tuned")) {
            assertTrue(passed.contains(expected), expected + " missing from: " + passed);
        }
        assertTrue(passed.contains("pytorch_opt_generate.py"), passed);
    }

    @Test
    void anInterpreterWithoutTorchSaysHowToInstallIt(@TempDir Path dir) throws IOException {
        Path python = interpreter(dir, """
                echo "ModuleNotFoundError: No module named 'torch'" >&2
                exit 1
                """);
        var e = assertThrows(PyTorchBaseline.UnavailableException.class,
                () -> PyTorchBaseline.start(python.toString(), SHAPE, 4, 16, 8, 2, 7, PyTorchBaseline.Linear.STANDARD));
        assertTrue(e.getMessage().contains("No module named 'torch'"), e.getMessage());
        assertTrue(e.getMessage().contains("apt-get install python3-torch"), e.getMessage());
    }

    @Test
    void aMissingInterpreterIsNamed(@TempDir Path dir) {
        String missing = dir.resolve("no-such-python").toString();
        var e = assertThrows(PyTorchBaseline.UnavailableException.class,
                () -> PyTorchBaseline.start(missing, SHAPE, 4, 16, 8, 2, 7, PyTorchBaseline.Linear.STANDARD));
        assertTrue(e.getMessage().contains(missing), e.getMessage());
    }

    @Test
    void aScriptThatDiesMidRunIsReportedWithItsError(@TempDir Path dir) throws IOException {
        Path python = interpreter(dir, """
                echo '{"ready": true, "torch": "9.9", "threads": 1, "blas": "none"}'
                read line
                echo "RuntimeError: out of memory" >&2
                exit 3
                """);
        try (PyTorchBaseline baseline = PyTorchBaseline.start(python.toString(), SHAPE, 4, 16, 8, 1, 7,
                PyTorchBaseline.Linear.STANDARD)) {
            var e = assertThrows(IllegalStateException.class, baseline::run);
            assertTrue(e.getMessage().contains("exit 3") && e.getMessage().contains("out of memory"), e.getMessage());
        }
    }

    @Test
    void shapesTheScriptDoesNotModelAreRefused() {
        OptConfig postLayerNorm = OptConfig.shape("opt-350m");
        assertThrows(IllegalArgumentException.class,
                () -> PyTorchBaseline.start("python3", postLayerNorm, 4, 16, 8, 2, 7, PyTorchBaseline.Linear.STANDARD));
    }

    private static Path interpreter(Path dir, String body) throws IOException {
        Path script = dir.resolve("python");
        Files.writeString(script, "#!/bin/sh\n" + body);
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwx------"));
        return script;
    }
}
