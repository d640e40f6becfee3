package io.flexstream.cli;

import io.flexstream.engine.Generator;
import io.flexstream.stream.PipelineBenchmark;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;

/**
 * {@code flexstream bench pipeline}: the same prompts through the engine alone and end to end through a Kafka broker
 * (in-process, or a running cluster with {@code --bootstrap-servers}), in one run; prints both tokens/s and their
 * ratio (target at least 0.95).
 */
@Command(name = "pipeline", mixinStandardHelpOptions = true,
        description = "Kafka overhead: engine-alone vs end-to-end tokens/s on the same prompts, same run.")
public final class BenchPipelineCommand implements Callable<Integer> {

    @picocli.CommandLine.Mixin
    BackendOptions backend = new BackendOptions();

    @Option(names = "--model", paramLabel = "DIR", description = "OPT checkpoint (default: a random model of "
            + "hidden size --hidden and --layers layers, OPT-125M's shape unless changed)")
    Path model;

    @Option(names = "--hidden", defaultValue = "768", description = "hidden size of the generated model "
            + "(default: ${DEFAULT-VALUE}, OPT-125M; 256 with --layers 4 is the stress case: so little engine work "
            + "per record that Kafka's per-record cost weighs most)")
    int hidden;

    @Option(names = "--layers", defaultValue = "12", description = "layers of the generated model "
            + "(default: ${DEFAULT-VALUE})")
    int layers;

    @Option(names = "--prompts", defaultValue = "64", description = "prompts (default: ${DEFAULT-VALUE})")
    int prompts;

    @Option(names = "--batch-size", defaultValue = "16", description = "prompts per batch (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--max-new-tokens", defaultValue = "32", description = "tokens per prompt "
            + "(default: ${DEFAULT-VALUE})")
    int maxNewTokens;

    @Option(names = "--partitions", defaultValue = "2", description = "prompt topic partitions "
            + "(default: ${DEFAULT-VALUE})")
    int partitions;

    @Option(names = "--repeats", defaultValue = "7", description = "Kafka passes, each between two engine-alone "
            + "passes; the ratio is the median over them, so one pass disturbed by the host does not decide it "
            + "(default: ${DEFAULT-VALUE})")
    int repeats;

    @Option(names = "--bootstrap-servers", paramLabel = "HOST:PORT", description = "use this running cluster "
            + "(topics and group named per run) instead of a broker inside the benchmark's process; e.g. a broker "
            + "started apart with `nice -n 19 ./flexstream broker`, so that it does not compete with the engine "
            + "for the cores as a broker on another machine would not (default: in-process broker)")
    String bootstrapServers;

    @Override
    public Integer call() throws Exception {
        System.out.println("command: flexstream bench pipeline" + (model == null ? " --hidden " + hidden
                + " --layers " + layers : " --model " + model) + " --prompts " + prompts + " --batch-size "
                + batchSize + " --max-new-tokens " + maxNewTokens + " --partitions " + partitions
                + " --repeats " + repeats + (bootstrapServers == null ? "" : " --bootstrap-servers " + bootstrapServers));
        System.out.println("machine: " + MachineInfo.describe());
        Path dir = model;
        Path temporary = null;
        if (dir == null) {
            temporary = Files.createTempDirectory("flexstream-bench-");
            dir = temporary.resolve("random-opt");
            io.flexstream.model.TinyModel.write(dir, io.flexstream.model.OptConfig.tiny(hidden, layers,
                    Math.max(1, hidden / 64), io.flexstream.model.OptConfig.DEFAULT_VOCAB_SIZE), 1L,
                    io.flexstream.tensor.DType.F32);
        }
        try (Generator generator = backend.openInMemory(dir, System.out::println)) {
            PipelineBenchmark.Result r = PipelineBenchmark.run(generator, new PipelineBenchmark.Options(prompts,
                    batchSize, maxNewTokens, partitions, repeats, Duration.ofMinutes(30), bootstrapServers), System.out);
            return r.ratio() > 0 ? 0 : 1;
        } finally {
            if (temporary != null) {
                try (var files = Files.walk(temporary)) {
                    files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
                }
            }
        }
    }
}
