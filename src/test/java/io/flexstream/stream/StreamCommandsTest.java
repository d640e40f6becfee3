package io.flexstream.stream;

import io.flexstream.cli.FlexStreamCli;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The stream commands are registered and reject bad invocations with clear messages. */
class StreamCommandsTest {

    @Test
    void commandsAreRegistered() {
        CommandLine cli = FlexStreamCli.commandLine();
        assertTrue(cli.getSubcommands().keySet().containsAll(java.util.Set.of("serve", "broker", "demo")));
    }

    @Test
    void serveWithoutModelIsAClearError() {
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true));
        int code;
        try {
            code = FlexStreamCli.commandLine().execute("serve", "--bootstrap-servers", "127.0.0.1:1",
                    "--input-topic", "in", "--output-topic", "out");
        } finally {
            System.setErr(err);
        }
        assertEquals(2, code);
        assertTrue(captured.toString().contains("--model is required"), captured.toString());
    }

    @Test
    void serveReportsInvalidSettingsByKey() {
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true));
        int code;
        try {
            code = FlexStreamCli.commandLine().execute("serve", "--bootstrap-servers", "127.0.0.1:1", "--model",
                    "/nonexistent", "--input-topic", "in", "--output-topic", "out", "--batch-size", "0");
        } finally {
            System.setErr(err);
        }
        assertEquals(2, code);
        assertTrue(captured.toString().contains("batch.size must be in [1, 65536], got 0"), captured.toString());
    }

    @Test
    void helpListsTheContractFlags() {
        StringWriter out = new StringWriter();
        CommandLine cli = FlexStreamCli.commandLine();
        cli.setOut(new PrintWriter(out));
        cli.execute("serve", "--help");
        for (String flag : new String[] {"--bootstrap-servers", "--model", "--input-topic", "--output-topic",
                "--group-id", "--config"}) {
            assertTrue(out.toString().contains(flag), flag);
        }
    }
}
