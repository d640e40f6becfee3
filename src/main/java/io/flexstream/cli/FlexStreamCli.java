package io.flexstream.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point: {@code ./flexstream <command>}. Each command lives in its own class in this package. */
@Command(name = "flexstream",
        mixinStandardHelpOptions = true,
        versionProvider = FlexStreamCli.Version.class,
        description = "Kafka stream processing for high-throughput offline LLM generation.",
        subcommands = {
                CommandLine.HelpCommand.class,
                DemoCommand.class,
                ServeCommand.class,
                ViewCommand.class,
                BrokerCommand.class,
                ModelCommand.class,
                GenerateCommand.class,
                BenchCommand.class,
                PolicyCommand.class,
                ProfileCommand.class,
        })
public final class FlexStreamCli implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The configured command line, shared by main and tests. */
    public static CommandLine commandLine() {
        return new CommandLine(new FlexStreamCli())
                .setExecutionExceptionHandler(FlexStreamCli::unavailableDependency)
                .setCaseInsensitiveEnumValuesAllowed(true)
                .setUsageHelpAutoWidth(true);
    }

    /**
     * A forced --backend cuda that cannot run, or a --pytorch interpreter without torch, is a usage error with its
     * cause and fix, not a stack trace.
     */
    private static int unavailableDependency(Exception e, CommandLine commandLine, CommandLine.ParseResult parsed)
            throws Exception {
        if (e instanceof io.flexstream.kernel.cuda.CudaUnavailableException
                || e instanceof PyTorchBaseline.UnavailableException) {
            commandLine.getErr().println(commandLine.getCommandSpec().qualifiedName() + ": " + e.getMessage());
            return 2;
        }
        throw e;
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = FlexStreamCli.class.getPackage().getImplementationVersion();
            return new String[] {"flexstream " + (v == null ? "dev" : v), "java " + Runtime.version()};
        }
    }
}
