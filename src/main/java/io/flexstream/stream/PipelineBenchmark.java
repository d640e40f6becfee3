package io.flexstream.stream;

import io.flexstream.engine.GenerationRequest;
import io.flexstream.engine.GenerationResult;
import io.flexstream.engine.Generator;
import io.flexstream.engine.InvalidRequestException;
import io.flexstream.engine.PreparedPrompt;
import io.flexstream.engine.SamplingParams;
import io.flexstream.stream.avro.Completion;
import io.flexstream.stream.avro.Prompt;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * What Kafka costs: the same prompts, in the same run, through the engine alone (prepare, bucket, generate) and end to
 * end (produce to an in-process broker, consume, batch, generate, publish, read the completions back). Both report new
 * tokens per second; the ratio pipeline / engine is the figure to watch (target: at least 0.95).
 *
 * <p>Method. The passes alternate, engine, Kafka, engine, Kafka, ..., engine, so every Kafka pass sits between two
 * engine passes; each Kafka pass is compared with the mean of its two neighbours and the reported ratio is the median
 * of those paired ratios. On a shared two-core machine the load drifts by tens of percent within a minute, and pairing
 * neighbours cancels most of that drift, which a single before/after comparison does not. One broker, one node and
 * one completion reader serve every Kafka pass (starting a broker and joining a group are once per process, not per
 * record); each pass produces fresh prompt ids. A Kafka pass's clock starts just before its first prompt is produced
 * and stops when its last completion has been read back, so producing, fetching, batching, publishing and the read
 * back are all inside it.
 *
 * <p>The engine-alone pass forms its batches with the same {@link MicroBatcher} and sizer as the node. Untimed
 * engine-alone passes warm the JIT up first (until two agree within 10%), then one untimed Kafka pass warms the
 * Kafka side.
 *
 * <p>Entry point for {@code flexstream bench pipeline}: {@link #run(Generator, Options, PrintStream)}.
 */
public final class PipelineBenchmark {

    /**
     * @param prompts      number of prompts per pass (cycling through {@link SamplePrompts})
     * @param batchSize    prompts per batch, both passes
     * @param maxNewTokens tokens per completion (greedy decoding)
     * @param partitions   partitions of the benchmark's prompts topic
     * @param repeats      Kafka passes (each between two engine-alone passes)
     * @param timeout      give up on a Kafka pass after this long
     * @param bootstrapServers a running cluster to use, or null for a broker inside this process
     */
    public record Options(int prompts, int batchSize, int maxNewTokens, int partitions, int repeats,
                          Duration timeout, String bootstrapServers) {
        public Options {
            if (prompts < 1 || batchSize < 1 || maxNewTokens < 1 || partitions < 1 || repeats < 1) {
                throw new IllegalArgumentException("prompts, batch size, new tokens, partitions and repeats must "
                        + "all be at least 1");
            }
        }

        public static Options defaults() {
            return new Options(64, 8, 32, 2, 7, Duration.ofMinutes(30), null);
        }
    }

    /**
     * One timed pass: new tokens, wall seconds and, for a Kafka pass, the seconds spent inside generate.
     *
     * @param cpuSeconds CPU seconds per thread group during the pass (see {@link #threadGroup}), largest first
     */
    public record Pass(long tokens, double seconds, double generateSeconds, Map<String, Double> cpuSeconds) {
        public double tokensPerSecond() {
            return tokens / seconds;
        }
    }

    /**
     * The engine-alone passes (one more than the Kafka passes; Kafka pass i sits between engine passes i and i+1).
     */
    public record Result(List<Pass> engine, List<Pass> pipeline) {

        /** Median over the Kafka passes of pass tokens/s over the mean tokens/s of its two neighbouring engine passes. */
        public double ratio() {
            double[] ratios = new double[pipeline.size()];
            for (int i = 0; i < ratios.length; i++) {
                double neighbours = (engine.get(i).tokensPerSecond() + engine.get(i + 1).tokensPerSecond()) / 2;
                ratios[i] = pipeline.get(i).tokensPerSecond() / neighbours;
            }
            return median(ratios);
        }

        public double engineTokensPerSecond() {
            return median(engine.stream().mapToDouble(Pass::tokensPerSecond).toArray());
        }

        public double pipelineTokensPerSecond() {
            return median(pipeline.stream().mapToDouble(Pass::tokensPerSecond).toArray());
        }

        /**
         * Median share of a Kafka pass's wall time that the engine spent generating: the Kafka overhead on the
         * critical path, measured under the same machine load as the pass itself.
         */
        public double engineBusy() {
            return median(pipeline.stream().mapToDouble(p -> p.generateSeconds() / p.seconds()).toArray());
        }

        public long engineTokens() {
            return engine.getFirst().tokens();
        }

        public long pipelineTokens() {
            return pipeline.getFirst().tokens();
        }
    }

    private PipelineBenchmark() {
    }

    public static Result run(Generator generator, Options options, PrintStream out) throws Exception {
        out.printf("pipeline benchmark: model %s, %d prompts per pass, batch %d, %d new tokens each, %d Kafka "
                        + "passes between %d engine-alone passes, %d cores, java %s; broker: %s%n",
                generator.modelName(), options.prompts(), options.batchSize(), options.maxNewTokens(),
                options.repeats(), options.repeats() + 1, Runtime.getRuntime().availableProcessors(),
                Runtime.version(), options.bootstrapServers() == null ? "in this process"
                        : options.bootstrapServers() + " (another process; its CPU is not counted below)");
        List<GenerationRequest> warmUp = requests("warm", options);
        long previous = Long.MAX_VALUE;
        for (int pass = 1; pass <= 6; pass++) {
            long nanos = (long) (engineAlone(generator, warmUp, options.batchSize()).seconds() * 1e9);
            out.printf("warm-up pass %d (not counted): %.2f s%n", pass, nanos / 1e9);
            if (Math.abs(nanos - previous) < 0.1 * previous) {
                break;
            }
            previous = nanos;
        }
        List<Pass> engine = new ArrayList<>();
        List<Pass> pipeline = new ArrayList<>();
        try (KafkaSide kafka = KafkaSide.start(generator, options)) {
            // The engine-alone side is warm from the passes above; the Kafka side (clients, Avro, the node's loops)
            // gets one pass too: a running consumer is always warm, and a cold first pass measured 0.81-0.92 of its
            // neighbours where the later ones measured 0.96-1.12.
            Pass warm = kafka.pass(requests("kafka-warm", options), options);
            out.printf("Kafka warm-up pass (not counted): %.2f s%n", warm.seconds());
            for (int i = 0; i <= options.repeats(); i++) {
                Pass alone = engineAlone(generator, requests("engine-" + i, options), options.batchSize());
                engine.add(alone);
                out.printf("engine alone  %d: %d new tokens in %6.2f s = %7.1f tokens/s%n", i + 1, alone.tokens(),
                        alone.seconds(), alone.tokensPerSecond());
                out.println("  CPU during the pass: " + cpuLine(alone.cpuSeconds()));
                if (i == options.repeats()) {
                    break;
                }
                Pass through = kafka.pass(requests("kafka-" + i, options), options);
                pipeline.add(through);
                out.printf("through Kafka %d: %d new tokens in %6.2f s = %7.1f tokens/s (engine busy %.1f%%)%n",
                        i + 1, through.tokens(), through.seconds(), through.tokensPerSecond(),
                        100 * through.generateSeconds() / through.seconds());
                out.println("  CPU during the pass: " + cpuLine(through.cpuSeconds()));
            }
        }
        Result result = new Result(List.copyOf(engine), List.copyOf(pipeline));
        out.printf("engine alone (median):  %.1f tokens/s%n", result.engineTokensPerSecond());
        out.printf("through Kafka (median): %.1f tokens/s%n", result.pipelineTokensPerSecond());
        out.printf("ratio pipeline / engine: %.3f (median of each Kafka pass over its neighbouring engine passes; "
                + "target >= 0.95)%n", result.ratio());
        out.printf("engine busy during the Kafka passes: %.1f%% (median)%n", 100 * result.engineBusy());
        return result;
    }

    /** The thread group of generation: the node's engine thread (or the benchmark's, alone) and the kernel workers. */
    static final String ENGINE_GROUP = "engine (generation)";

    /**
     * The group a thread's CPU is reported under: the engine thread and its kernel workers together, every other
     * thread by its name without the trailing number (the broker's request handlers, network threads, the clients'
     * I/O threads, ...). GC and JIT compiler threads are not Java threads and are not seen.
     */
    static String threadGroup(String name) {
        if (name.equals("flexstream-engine") || name.startsWith("flexstream-kernel-")) {
            return ENGINE_GROUP;
        }
        return name.replaceAll("[-_ ]*\\d+$", "");
    }

    /**
     * "engine (generation) 6.91 s, all other threads 0.52 s (largest: name 0.20 s, ...)", the five largest other
     * groups named.
     */
    static String cpuLine(Map<String, Double> cpuSeconds) {
        if (cpuSeconds.isEmpty()) {
            return "not measured (this JVM does not report per-thread CPU time)";
        }
        double engine = cpuSeconds.getOrDefault(ENGINE_GROUP, 0.0);
        double others = cpuSeconds.values().stream().mapToDouble(Double::doubleValue).sum() - engine;
        String top = cpuSeconds.entrySet().stream().filter(e -> !e.getKey().equals(ENGINE_GROUP)).limit(5)
                .map(e -> String.format(Locale.ROOT, "%s %.2f s", e.getKey(), e.getValue()))
                .collect(Collectors.joining(", "));
        return String.format(Locale.ROOT, "engine (generation) %.2f s, all other threads %.2f s (largest: %s)",
                engine, others, top);
    }

    private static List<GenerationRequest> requests(String prefix, Options options) {
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < options.prompts(); i++) {
            requests.add(GenerationRequest.text(prefix + "-" + i, SamplePrompts.get(i),
                    SamplingParams.greedy(options.maxNewTokens())));
        }
        return requests;
    }

    private static Pass engineAlone(Generator generator, List<GenerationRequest> requests, int batchSize)
            throws InvalidRequestException {
        ThreadCpuSample cpuBefore = ThreadCpuSample.take();
        long start = System.nanoTime();
        MicroBatcher<PreparedPrompt> batcher = new MicroBatcher<>(BatchSizer.fixed(batchSize), 0,
                p -> p.tokenIds().length);
        for (GenerationRequest r : requests) {
            batcher.add(generator.prepare(r), System.nanoTime());
        }
        long tokens = 0;
        for (Optional<MicroBatcher.Batch<PreparedPrompt>> b = batcher.poll(Long.MAX_VALUE); b.isPresent();
             b = batcher.poll(Long.MAX_VALUE)) {
            for (GenerationResult result : generator.generate(b.get().items())) {
                tokens += result.tokenIds().length;
            }
        }
        long nanos = System.nanoTime() - start;
        // Here the calling thread generates: it counts with the engine. The broker is up (idle) during these passes.
        Map<String, Double> cpu = ThreadCpuSample.take().since(cpuBefore,
                name -> name.equals(Thread.currentThread().getName()) ? ENGINE_GROUP : threadGroup(name));
        return new Pass(tokens, nanos / 1e9, nanos / 1e9, cpu);
    }

    /**
     * The broker (null when the cluster runs elsewhere), the node under test, a producer and a completion reader,
     * shared by every Kafka pass.
     */
    private record KafkaSide(EmbeddedKafkaBroker broker, StreamNode node, CompletionReader reader,
                             KafkaProducer<byte[], byte[]> producer, String topic) implements AutoCloseable {

        static KafkaSide start(Generator generator, Options options) throws Exception {
            // Names of their own per run, so that a long-lived external cluster never feeds a run old records.
            String run = Long.toString(System.currentTimeMillis(), 36);
            String in = "bench-prompts-" + run;
            String outTopic = "bench-completions-" + run;
            EmbeddedKafkaBroker broker = options.bootstrapServers() == null
                    ? EmbeddedKafkaBroker.builder().start() : null;
            String bootstrap = broker != null ? broker.bootstrapServers() : options.bootstrapServers();
            StreamNode node = null;
            CompletionReader reader = null;
            try {
                Topics.create(bootstrap, Map.of(in, options.partitions(), outTopic, options.partitions(),
                        in + ".DLT", 1));
                Map<String, String> raw = new HashMap<>();
                raw.put("bootstrap.servers", bootstrap);
                raw.put("input.topic", in);
                raw.put("output.topic", outTopic);
                raw.put("group.id", "bench-" + run);
                raw.put("batch.size", Integer.toString(options.batchSize()));
                raw.put("max.buffered", Integer.toString(Math.max(2 * options.batchSize(), options.prompts())));
                raw.put("linger.ms", "100");
                raw.put("max.new.tokens", Integer.toString(options.maxNewTokens()));
                node = StreamNode.start(StreamConfig.fromMap(raw), generator, BatchSizer.fixed(options.batchSize()));
                reader = new CompletionReader(bootstrap, outTopic);
                long joinDeadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (node.rebalances() == 0 && System.nanoTime() < joinDeadline) {
                    Thread.sleep(20);
                }
                if (node.rebalances() == 0) {
                    throw new IllegalStateException("the benchmark's consumer did not join its group within 60 s");
                }
                KafkaProducer<byte[], byte[]> producer = PipelineBenchmark.producer(bootstrap);
                producer.partitionsFor(in);     // metadata fetched before any clock starts, like a running client
                return new KafkaSide(broker, node, reader, producer, in);
            } catch (Exception | Error e) {
                closeQuietly(reader);
                closeQuietly(node);
                closeQuietly(broker);
                throw e;
            }
        }

        Pass pass(List<GenerationRequest> requests, Options options) {
            long generatingBefore = node.generationNanos();
            ThreadCpuSample cpuBefore = ThreadCpuSample.take();
            long start = System.nanoTime();
            produce(producer, topic, requests, options.maxNewTokens());
            Set<String> ids = requests.stream().map(GenerationRequest::id).collect(Collectors.toSet());
            Map<String, Completion> completions = reader.awaitAll(ids, options.timeout());
            long nanos = System.nanoTime() - start;
            Map<String, Double> cpu = ThreadCpuSample.take().since(cpuBefore, PipelineBenchmark::threadGroup);
            long generating = node.generationNanos() - generatingBefore;
            if (!completions.keySet().containsAll(ids)) {
                throw new IllegalStateException("only " + completions.size() + " of " + ids.size()
                        + " completions within " + options.timeout());
            }
            long tokens = ids.stream().mapToLong(id -> completions.get(id).getTokenIds().size()).sum();
            return new Pass(tokens, nanos / 1e9, generating / 1e9, cpu);
        }

        @Override
        public void close() {
            closeQuietly(producer);
            closeQuietly(reader);
            closeQuietly(node);
            closeQuietly(broker);
        }

        private static void closeQuietly(AutoCloseable c) {
            if (c == null) {
                return;
            }
            try {
                c.close();
            } catch (Exception e) {
                System.err.println("closing " + c.getClass().getSimpleName() + ": " + e);
            }
        }
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        java.util.Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private static KafkaProducer<byte[], byte[]> producer(String bootstrap) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("linger.ms", "5");
        return new KafkaProducer<>(p);
    }

    private static void produce(KafkaProducer<byte[], byte[]> producer, String topic, List<GenerationRequest> requests,
                                int maxNewTokens) {
        try {
            for (GenerationRequest r : requests) {
                ByteBuffer value = Prompt.newBuilder().setId(r.id()).setPrompt(r.prompt())
                        .setMaxNewTokens(maxNewTokens).build().toByteBuffer();
                byte[] bytes = new byte[value.remaining()];
                value.get(bytes);
                producer.send(new ProducerRecord<>(topic, r.id().getBytes(StandardCharsets.UTF_8), bytes));
            }
            producer.flush();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
