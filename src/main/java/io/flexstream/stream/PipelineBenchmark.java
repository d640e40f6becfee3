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
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * What Kafka costs: the same prompts, in the same run, once through the engine alone (prepare, bucket, generate) and
 * once end to end (produce to an in-process broker, consume, batch, generate, publish, read the completions back).
 * Both report new tokens per second; the ratio pipeline / engine is the figure to watch (target: at least 0.95).
 *
 * <p>The engine-alone pass forms its batches with the same {@link MicroBatcher} and sizer as the node, so both passes
 * run the same batch shapes when the prompts arrive together. The pipeline clock starts after the consumer has joined
 * its group (joining is a one-off per process, not per-record overhead) and just before the first prompt is produced,
 * and stops when the last completion has been read back. Untimed engine-alone passes warm the JIT up first (until two agree within 10%), and
 * the engine-alone figure is the mean of one pass before and one after the pipeline pass.
 *
 * <p>Entry point for {@code flexstream bench pipeline}: {@link #run(Generator, Options, PrintStream)}.
 */
public final class PipelineBenchmark {

    /**
     * @param prompts      number of prompts (cycling through {@link SamplePrompts})
     * @param batchSize    prompts per batch, both passes
     * @param maxNewTokens tokens per completion (greedy decoding)
     * @param partitions   partitions of the benchmark's prompts topic
     * @param timeout      give up on the pipeline pass after this long
     */
    public record Options(int prompts, int batchSize, int maxNewTokens, int partitions, Duration timeout) {
        public static Options defaults() {
            return new Options(64, 8, 32, 2, Duration.ofMinutes(30));
        }
    }

    /**
     * Both passes' new tokens and wall seconds, and the time the engine spent inside {@code generate} during the
     * pipeline pass.
     */
    public record Result(long engineTokens, double engineSeconds, long pipelineTokens, double pipelineSeconds,
                         double pipelineGenerateSeconds) {
        public double engineTokensPerSecond() {
            return engineTokens / engineSeconds;
        }

        public double pipelineTokensPerSecond() {
            return pipelineTokens / pipelineSeconds;
        }

        /** Pipeline tokens/s over engine-alone tokens/s. */
        public double ratio() {
            return pipelineTokensPerSecond() / engineTokensPerSecond();
        }

        /**
         * Share of the pipeline pass's wall time the engine spent generating: the Kafka overhead on the critical
         * path, measured under the same machine load as the pass itself (so it does not drift with other processes,
         * unlike {@link #ratio()} on a shared machine).
         */
        public double engineBusy() {
            return pipelineGenerateSeconds / pipelineSeconds;
        }
    }

    private PipelineBenchmark() {
    }

    public static Result run(Generator generator, Options options, PrintStream out) throws Exception {
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < options.prompts(); i++) {
            requests.add(GenerationRequest.text("bench-" + i, SamplePrompts.get(i),
                    SamplingParams.greedy(options.maxNewTokens())));
        }
        out.printf("pipeline benchmark: model %s, %d prompts, batch %d, %d new tokens each, %d cores, java %s%n",
                generator.modelName(), options.prompts(), options.batchSize(), options.maxNewTokens(),
                Runtime.getRuntime().availableProcessors(), Runtime.version());

        // JIT warm-up: untimed engine-alone passes until two in a row agree within 10% (at most 6).
        long previous = Long.MAX_VALUE;
        for (int pass = 1; pass <= 6; pass++) {
            long nanos = engineAlone(generator, requests, options.batchSize())[1];
            out.printf("warm-up pass %d (not counted): %.2f s%n", pass, nanos / 1e9);
            if (Math.abs(nanos - previous) < 0.1 * previous) {
                break;
            }
            previous = nanos;
        }
        long[] before = engineAlone(generator, requests, options.batchSize());
        out.printf("engine alone (1): %d new tokens in %.2f s = %.1f tokens/s%n", before[0], before[1] / 1e9,
                before[0] / (before[1] / 1e9));
        long[] pipeline = throughKafka(generator, requests, options);
        out.printf("through Kafka:    %d new tokens in %.2f s = %.1f tokens/s%n", pipeline[0], pipeline[1] / 1e9,
                pipeline[0] / (pipeline[1] / 1e9));
        long[] after = engineAlone(generator, requests, options.batchSize());
        out.printf("engine alone (2): %d new tokens in %.2f s = %.1f tokens/s%n", after[0], after[1] / 1e9,
                after[0] / (after[1] / 1e9));
        // The engine runs before and after the pipeline pass and the two are averaged, so a drift in machine load
        // or JIT state over the run does not favour either side.
        Result result = new Result((before[0] + after[0]) / 2, (before[1] + after[1]) / 2e9, pipeline[0],
                pipeline[1] / 1e9, pipeline[2] / 1e9);
        out.printf("engine alone (mean): %.1f tokens/s%n", result.engineTokensPerSecond());
        out.printf("ratio pipeline / engine: %.3f (target >= 0.95)%n", result.ratio());
        out.printf("engine busy during the pipeline pass: %.1f%% of %.2f s (%.2f s inside generate)%n",
                100 * result.engineBusy(), result.pipelineSeconds(), result.pipelineGenerateSeconds());
        return result;
    }

    /** Returns {new tokens, nanoseconds}. */
    private static long[] engineAlone(Generator generator, List<GenerationRequest> requests, int batchSize)
            throws InvalidRequestException {
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
        return new long[] {tokens, System.nanoTime() - start};
    }

    /** Returns {new tokens, nanoseconds, nanoseconds inside generate}. */
    private static long[] throughKafka(Generator generator, List<GenerationRequest> requests, Options options)
            throws Exception {
        String in = "bench-prompts";
        String outTopic = "bench-completions";
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.builder().start()) {
            broker.createTopics(Map.of(in, options.partitions(), outTopic, options.partitions(), in + ".DLT", 1));
            Map<String, String> raw = new HashMap<>();
            raw.put("bootstrap.servers", broker.bootstrapServers());
            raw.put("input.topic", in);
            raw.put("output.topic", outTopic);
            raw.put("group.id", "bench");
            raw.put("batch.size", Integer.toString(options.batchSize()));
            raw.put("max.buffered", Integer.toString(Math.max(2 * options.batchSize(), options.prompts())));
            raw.put("linger.ms", "100");
            raw.put("max.new.tokens", Integer.toString(options.maxNewTokens()));
            StreamConfig config = StreamConfig.fromMap(raw);
            try (StreamNode node = StreamNode.start(config, generator, BatchSizer.fixed(options.batchSize()));
                 CompletionReader reader = new CompletionReader(broker.bootstrapServers(), outTopic);
                 KafkaProducer<byte[], byte[]> producer = producer(broker.bootstrapServers())) {
                long joinDeadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (node.rebalances() == 0 && System.nanoTime() < joinDeadline) {
                    Thread.sleep(20);
                }
                producer.partitionsFor(in);     // metadata fetched before the clock starts, like a running client
                long start = System.nanoTime();
                produce(producer, in, requests, options.maxNewTokens());
                Set<String> ids = requests.stream().map(GenerationRequest::id).collect(Collectors.toSet());
                Map<String, Completion> completions = reader.awaitAll(ids, options.timeout());
                long nanos = System.nanoTime() - start;
                long generating = node.generationNanos();
                if (!completions.keySet().containsAll(ids)) {
                    throw new IllegalStateException("only " + completions.size() + " of " + ids.size()
                            + " completions within " + options.timeout());
                }
                long tokens = completions.values().stream().mapToLong(c -> c.getTokenIds().size()).sum();
                return new long[] {tokens, nanos, generating};
            }
        }
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
