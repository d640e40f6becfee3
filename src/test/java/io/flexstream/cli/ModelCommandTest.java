package io.flexstream.cli;

import io.flexstream.model.Checkpoint;
import io.flexstream.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelCommandTest {

    @TempDir
    Path dir;

    private record Run(int code, String out, String err) {
    }

    private static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = FlexStreamCli.commandLine();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        int code = cli.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    @Test
    void helpShowsDefaults() {
        Run r = run("model", "tiny", "--help");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("default: 64"), r.out());
        assertTrue(r.out().contains("default: 50272"), r.out());
        assertTrue(r.out().contains("default: 4 x --hidden"), r.out());
        assertTrue(r.out().contains("default: F32"), r.out());
    }

    @Test
    void tinyThenInfo() {
        Path model = dir.resolve("m");
        Run r = run("model", "tiny", model.toString(), "--hidden", "32", "--heads", "2", "--vocab", "1000",
                "--dtype", "bf16", "--post-ln", "--word-embed-proj-dim", "16", "--shards", "2");
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.exists(model.resolve(Checkpoint.INDEX)));
        assertTrue(Files.exists(model.resolve("vocab.json")));
        assertTrue(Files.exists(model.resolve("merges.txt")));
        r = run("model", "info", model.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("post-LN"), r.out());
        assertTrue(r.out().contains("BF16"), r.out());
        assertTrue(r.out().contains("in 2 file(s)"), r.out());
        assertTrue(r.out().contains("every expected tensor present"), r.out());
    }

    @Test
    void infoOnABadDirectoryExplains() {
        Run r = run("model", "info", dir.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("config.json"), r.err());
    }

    @Test
    void badShapeIsAUsageError() {
        Run r = run("model", "tiny", dir.resolve("x").toString(), "--hidden", "30", "--heads", "4");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("not divisible"), r.err());
    }

    @Test
    void vocabularyTooSmallIsAUsageError() {
        Run r = run("model", "tiny", dir.resolve("x").toString(), "--vocab", "100");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--vocab must be at least 260"), r.err());
    }
}
