package io.flexstream.cli;

import io.flexstream.engine.Generator;
import io.flexstream.stream.BatchSizer;
import io.flexstream.stream.CompletionReader;
import io.flexstream.stream.EmbeddedKafkaBroker;
import io.flexstream.stream.SamplePrompts;
import io.flexstream.stream.StreamConfig;
import io.flexstream.stream.StreamNode;
import io.flexstream.stream.avro.Completion;
import io.flexstream.stream.avro.Prompt;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Callable;

/**
 * {@code flexstream demo}: the whole pipeline on one machine. Starts an in-process Kafka broker, creates the topics,
 * writes a tiny random OPT model unless {@code --model} names one, produces sample prompts, runs one consumer node
 * until every prompt has a completion, prints them with the throughput, and shuts everything down.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Run broker, model and consumer in-process: prompts in, completions out, then exit.")
public final class DemoCommand implements Callable<Integer> {

    static final String INPUT = "flexstream-prompts";
    static final String OUTPUT = "flexstream-completions";

    @picocli.CommandLine.Mixin
    BackendOptions backend = new BackendOptions();

    @Option(names = "--model", paramLabel = "DIR", description = "OPT checkpoint directory (default: a tiny random "
            + "model, hidden 64, 2 layers, 4 heads, written to the work directory)")
    Path model;

    @Option(names = "--prompts", description = "number of prompts (default: ${DEFAULT-VALUE})")
    int prompts = 12;

    @Option(names = "--batch-size", description = "prompts per batch (default: ${DEFAULT-VALUE})")
    int batchSize = 4;

    @Option(names = "--max-new-tokens", description = "tokens per completion (default: ${DEFAULT-VALUE})")
    int maxNewTokens = 16;

    @Option(names = "--partitions", description = "partitions of the prompts topic (default: ${DEFAULT-VALUE})")
    int partitions = 2;

    @Option(names = "--work-dir", paramLabel = "DIR", description = "where the tiny model goes (default: a temporary "
            + "directory, deleted on exit)")
    Path workDir;

    @Option(names = "--timeout-s", description = "give up after this many seconds (default: ${DEFAULT-VALUE})")
    int timeoutSeconds = 300;

    @Override
    public Integer call() throws Exception {
        if (prompts < 1 || batchSize < 1 || maxNewTokens < 1 || partitions < 1) {
            System.err.println("flexstream demo: --prompts, --batch-size, --max-new-tokens and --partitions must be "
                    + "at least 1");
            return 2;
        }
        boolean temporary = workDir == null;
        Path work = temporary ? Files.createTempDirectory("flexstream-demo-") : Files.createDirectories(workDir);
        try {
            return run(work);
        } finally {
            if (temporary) {
                deleteTree(work);
            }
        }
    }

    private int run(Path work) throws Exception {
        Path modelDir = model;
        if (modelDir == null) {
            modelDir = work.resolve("tiny-opt");
            System.out.printf("writing a tiny random OPT model (hidden %d, %d layers, %d heads) to %s%n",
                    DemoModel.HIDDEN, DemoModel.LAYERS, DemoModel.HEADS, modelDir);
            DemoModel.write(modelDir, 42L);
        }
        System.out.println("starting an in-process Kafka broker...");
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.builder().start();
             Generator generator = backend.openInMemory(modelDir, System.out::println)) {
            System.out.println("broker at " + broker.bootstrapServers() + "; model " + generator.modelName());
            broker.createTopics(Map.of(INPUT, partitions, OUTPUT, partitions, INPUT + ".DLT", 1));
            Map<String, String> prompts = produce(broker.bootstrapServers());
            Map<String, String> raw = new HashMap<>();
            raw.put("bootstrap.servers", broker.bootstrapServers());
            raw.put("input.topic", INPUT);
            raw.put("output.topic", OUTPUT);
            raw.put("group.id", "flexstream-demo");
            raw.put("batch.size", Integer.toString(batchSize));
            raw.put("linger.ms", "100");
            raw.put("max.new.tokens", Integer.toString(maxNewTokens));
            StreamConfig config = StreamConfig.fromMap(raw);

            long start = System.nanoTime();
            Map<String, Completion> completions;
            long tokens;
            long generationNanos;
            try (StreamNode node = StreamNode.start(config, generator, BatchSizer.fixed(batchSize));
                 CompletionReader reader = new CompletionReader(broker.bootstrapServers(), OUTPUT)) {
                completions = reader.awaitAll(prompts.keySet(), Duration.ofSeconds(timeoutSeconds));
                tokens = node.generatedTokens();
                generationNanos = node.generationNanos();
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            print(prompts, completions);
            System.out.printf("%d of %d prompts completed; %d new tokens in %.2f s end to end: %.1f tokens/s "
                            + "(engine alone %.1f tokens/s over %.2f s of generate)%n",
                    completions.size(), prompts.size(), tokens, seconds, tokens / seconds,
                    generationNanos > 0 ? tokens / (generationNanos / 1e9) : 0.0, generationNanos / 1e9);
            if (!completions.keySet().containsAll(prompts.keySet())) {
                System.err.println("flexstream demo: timed out after " + timeoutSeconds + " s");
                return 1;
            }
            return 0;
        }
    }

    /** Produces the sample prompts as Avro single-object records keyed by id; returns id to prompt text. */
    private Map<String, String> produce(String bootstrap) throws Exception {
        Map<String, String> byId = new LinkedHashMap<>();
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("acks", "all");
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < prompts; i++) {
                String id = "demo-" + (i + 1);
                String text = SamplePrompts.get(i);
                ByteBuffer value = Prompt.newBuilder().setId(id).setPrompt(text).setMaxNewTokens(maxNewTokens)
                        .setMetadata(Map.of("source", "flexstream demo")).build().toByteBuffer();
                byte[] bytes = new byte[value.remaining()];
                value.get(bytes);
                producer.send(new ProducerRecord<>(INPUT, id.getBytes(StandardCharsets.UTF_8), bytes));
                byId.put(id, text);
            }
            producer.flush();
        }
        System.out.printf("produced %d prompts to %s%n", byId.size(), INPUT);
        return byId;
    }

    private static void print(Map<String, String> prompts, Map<String, Completion> completions) {
        System.out.println();
        Set<String> ids = new LinkedHashSet<>(prompts.keySet());
        for (String id : ids) {
            Completion c = completions.get(id);
            System.out.printf("%-8s %s%n", id, prompts.get(id));
            if (c == null) {
                System.out.println("         (no completion)");
                continue;
            }
            System.out.printf("         -> %s%n         [%s, %d prompt + %d new tokens, batch #%d of %d prompts, partition %d "
                            + "offset %d]%n", oneLine(c.getText()), c.getFinishReason(), c.getPromptTokens(),
                    c.getTokenIds().size(), c.getBatchId(), c.getBatchSize(), c.getSourcePartition(),
                    c.getSourceOffset());
        }
        System.out.println();
    }

    private static String oneLine(String text) {
        String flat = text.replace("\r", "\\r").replace("\n", "\\n");
        return flat.length() > 160 ? flat.substring(0, 157) + "..." : flat;
    }

    private static void deleteTree(Path dir) {
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // a temporary directory left behind is harmless
        }
    }
}
