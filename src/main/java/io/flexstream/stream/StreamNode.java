package io.flexstream.stream;

import io.flexstream.engine.Generator;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * One FlexStream consumer-group member: a poll thread ({@link PollLoop}) and an engine thread ({@link EngineLoop})
 * sharing one idempotent producer for completions ({@link CompletionPublisher}) and dead letters
 * ({@link DeadLetters}). {@link #start} returns at once; {@link #close()} stops gracefully (see {@link PollLoop}) and
 * returns when the consumer and producer are closed. The generator belongs to the caller, who closes it after the node.
 */
public final class StreamNode implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(StreamNode.class);

    private final StreamConfig config;
    private final Producer<byte[], byte[]> producer;
    private final EngineLoop engine;
    private final PollLoop poll;
    private final Thread engineThread;
    private final Thread pollThread;
    private final DeadLetters deadLetters;
    private final long startNanos = System.nanoTime();
    private final String model;
    private final String policy;

    StreamNode(StreamConfig config, Generator generator, BatchSizer sizer, Consumer<byte[], byte[]> consumer,
               Producer<byte[], byte[]> producer) {
        this(config, generator, sizer, consumer, producer, StreamMetrics.NONE);
    }

    StreamNode(StreamConfig config, Generator generator, BatchSizer sizer, Consumer<byte[], byte[]> consumer,
               Producer<byte[], byte[]> producer, StreamMetrics metrics) {
        this.config = config;
        this.producer = producer;
        this.model = generator.modelName();
        this.policy = sizer.describe();
        Acknowledgements acks = new Acknowledgements();
        this.deadLetters = new DeadLetters(producer, config.deadLetterTopic(), acks, metrics);
        CompletionPublisher publisher = new CompletionPublisher(producer, config.outputTopic(), config.outputFormat(),
                acks);
        PollLoop[] pollRef = new PollLoop[1];
        this.engine = new EngineLoop(generator, sizer, config.lingerMs(), publisher, deadLetters, acks,
                origin -> pollRef[0].isCurrent(origin), metrics);
        this.engineThread = Thread.ofPlatform().name("flexstream-engine").daemon(true).unstarted(engine);
        this.poll = new PollLoop(consumer, config, new PromptDecoder(config.maxNewTokens()), deadLetters, acks,
                new EngineHandle(), () -> {
                    producer.flush();
                    return true;
                }, metrics);
        pollRef[0] = poll;
        this.pollThread = Thread.ofPlatform().name("flexstream-poll").daemon(true).unstarted(poll);
    }

    /** Connects to the cluster of {@code config} and starts consuming. */
    public static StreamNode start(StreamConfig config, Generator generator, BatchSizer sizer) {
        return start(config, generator, sizer, StreamMetrics.NONE);
    }

    /** As {@link #start(StreamConfig, Generator, BatchSizer)}, reporting to {@code metrics}. */
    public static StreamNode start(StreamConfig config, Generator generator, BatchSizer sizer, StreamMetrics metrics) {
        String client = "flexstream-" + UUID.randomUUID().toString().substring(0, 8);
        StreamNode node = new StreamNode(config, generator, sizer,
                new KafkaConsumer<>(config.consumerProperties(client)),
                new KafkaProducer<>(config.producerProperties(client)), metrics);
        node.begin();
        return node;
    }

    void begin() {
        LOG.info("consuming {} -> {} (dead letters {}) as group {}; model {}; batch {}, linger {} ms, buffer {}",
                config.inputTopic(), config.outputTopic(), config.deadLetterTopic(), config.groupId(),
                model, policy, config.lingerMs(), config.maxBuffered());
        engineThread.start();
        pollThread.start();
    }

    /** Blocks until the node stops (after {@link #close()}, or when the engine thread died). */
    public void awaitTermination() throws InterruptedException {
        pollThread.join();
    }

    /** Whether the poll thread is still running. */
    public boolean isRunning() {
        return pollThread.isAlive();
    }

    /**
     * Liveness: the poll thread runs and started a turn within {@code stallMillis}. A turn takes at most a poll
     * timeout plus a commit (bounded at 10 s), so a minute without one means the thread is wedged.
     */
    public boolean isLive(long stallMillis) {
        return isRunning() && System.nanoTime() - poll.lastTurnNanos() < stallMillis * 1_000_000;
    }

    /** Readiness: live and a member of the group (it has been through a first rebalance). */
    public boolean isReady() {
        return isLive(60_000) && poll.hasJoinedGroup();
    }

    /** Graceful stop: finish the block in flight within the shutdown timeout, publish, commit, close. */
    @Override
    public void close() {
        poll.requestStop();
        try {
            pollThread.join(config.shutdownTimeoutMs() + 30_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        producer.close(Duration.ofSeconds(10));
        double seconds = (System.nanoTime() - startNanos) / 1e9;
        LOG.info("node stopped after {} s: {} completions, {} dead letters, {} tokens generated",
                String.format("%.1f", seconds), engine.completions(), deadLetters.sentCount(),
                engine.generatedTokens());
    }

    public long completions() {
        return engine.completions();
    }

    public long deadLetters() {
        return deadLetters.sentCount();
    }

    public long generatedTokens() {
        return engine.generatedTokens();
    }

    /** Wall time the engine spent in {@code generate}, nanoseconds. */
    public long generationNanos() {
        return engine.generationNanos();
    }

    public long commits() {
        return poll.commitCount();
    }

    public long rebalances() {
        return poll.rebalanceCount();
    }

    private final class EngineHandle implements PollLoop.Engine {
        @Override
        public void submit(PromptRecord record) {
            engine.submit(record);
        }

        @Override
        public void stop() {
            engine.stop();
        }

        @Override
        public boolean await(long millis) throws InterruptedException {
            return engineThread.join(Duration.ofMillis(Math.max(1, millis)));
        }

        @Override
        public boolean isRunning() {
            return engineThread.isAlive() || engineThread.getState() == Thread.State.NEW;
        }
    }
}
