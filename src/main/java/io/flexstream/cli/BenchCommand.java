package io.flexstream.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code flexstream bench}: the project's benchmarks, each printing its command, the machine and its baseline. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks: each prints the command, the machine, the numbers and a baseline.",
        subcommands = {BenchGenerateCommand.class, BenchOffloadCommand.class, BenchPipelineCommand.class, BenchPolicyCommand.class,
                BenchQuantCommand.class})
public final class BenchCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
