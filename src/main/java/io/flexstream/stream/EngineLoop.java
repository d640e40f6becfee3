package io.flexstream.stream;

import io.flexstream.engine.GenerationResult;
import io.flexstream.engine.Generator;
import io.flexstream.engine.InvalidRequestException;
import io.flexstream.engine.PreparedPrompt;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * The engine thread: owns the {@link Generator} (which is not thread-safe, so {@code prepare} runs here too) and the
 * {@link MicroBatcher}, and turns prompts into published completions.
 *
 * <p>Each prompt moves through: inbox (filled by the poll thread) &rarr; {@code prepare} (tokenize and validate
 * against the model; a refusal becomes a dead letter) &rarr; its length bucket in the batcher &rarr; a block
 * ({@code generate}) &rarr; the publisher. Every prompt handed to {@link #submit} ends in exactly one
 * {@link Acknowledgements} entry: published (completion or dead letter acknowledged), failed, or abandoned.
 *
 * <p>Stale prompts: before a prompt is prepared and again before its block starts, it is checked against the node's
 * current ownership ({@code isCurrent}); prompts of partitions revoked or lost since they were polled are abandoned,
 * since their new owner will read them again. A block that already started runs to the end and is published anyway
 * (at-least-once allows the duplicate); the poll thread never commits its offsets.
 *
 * <p>Failures: if {@code generate} throws, the block is split in halves and each half retried, recursively, so a
 * single record that makes the engine fail is isolated with at most 2n - 1 calls and goes to the dead-letter topic
 * while every other record completes. A {@link VirtualMachineError} is not caught: it ends the thread, and the node
 * stops without committing the unfinished records.
 *
 * <p>Stopping: {@link #stop()} lets the block in flight finish and abandons everything still queued.
 */
public final class EngineLoop implements Runnable {

    private static final Logger LOG = LoggerFactory.getLogger(EngineLoop.class);
    private static final long IDLE_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    /** Long blocks log their progress at most this often. */
    private static final long PROGRESS_LOG_NANOS = TimeUnit.SECONDS.toNanos(
            Long.getLong("flexstream.progress.log.seconds", 30));

    /** A prompt the engine accepted, with its token ids. */
    record Prepared(PromptRecord record, PreparedPrompt prompt) {
    }

    private final Generator generator;
    private final MicroBatcher<Prepared> batcher;
    private final CompletionPublisher publisher;
    private final DeadLetters deadLetters;
    private final Acknowledgements acks;
    private final Predicate<RecordOrigin> isCurrent;
    private final BatchSizer sizer;
    private final StreamMetrics metrics;
    private final LinkedBlockingQueue<PromptRecord> inbox = new LinkedBlockingQueue<>();
    private volatile boolean stopping;

    private final AtomicLong completions = new AtomicLong();
    private final AtomicLong generatedTokens = new AtomicLong();
    private final AtomicLong generationNanos = new AtomicLong();
    private final AtomicLong blocks = new AtomicLong();

    /**
     * @param isCurrent whether a prompt's partition is still owned under the epoch it was read with
     */
    public EngineLoop(Generator generator, BatchSizer sizer, long lingerMs, CompletionPublisher publisher,
                      DeadLetters deadLetters, Acknowledgements acks, Predicate<RecordOrigin> isCurrent) {
        this(generator, sizer, lingerMs, publisher, deadLetters, acks, isCurrent, StreamMetrics.NONE);
    }

    public EngineLoop(Generator generator, BatchSizer sizer, long lingerMs, CompletionPublisher publisher,
                      DeadLetters deadLetters, Acknowledgements acks, Predicate<RecordOrigin> isCurrent,
                      StreamMetrics metrics) {
        this.sizer = sizer;
        this.metrics = metrics;
        this.generator = generator;
        this.batcher = new MicroBatcher<>(sizer, TimeUnit.MILLISECONDS.toNanos(lingerMs),
                p -> p.prompt().tokenIds().length);
        this.publisher = publisher;
        this.deadLetters = deadLetters;
        this.acks = acks;
        this.isCurrent = isCurrent;
    }

    /** Hands a decoded prompt to the engine thread; never blocks (the poll thread bounds the total). */
    public void submit(PromptRecord record) {
        inbox.add(record);
    }

    /** Asks the thread to finish the block in flight, abandon the rest and return. */
    public void stop() {
        stopping = true;
    }

    @Override
    public void run() {
        try {
            while (!stopping) {
                PromptRecord next = inbox.poll();
                while (next != null) {
                    accept(next);
                    next = inbox.poll();
                }
                batcher.removeIf(p -> !isCurrent.test(p.record().origin()))
                        .forEach(p -> acks.add(p.record().origin(), Acknowledgements.Kind.ABANDONED));
                Optional<MicroBatcher.Batch<Prepared>> batch = batcher.poll(System.nanoTime());
                if (batch.isPresent()) {
                    runBlock(batch.get());
                    continue;
                }
                long wait = Math.min(IDLE_WAIT_NANOS, Math.max(0, batcher.nextDeadlineNanos() - System.nanoTime()));
                next = inbox.poll(wait, TimeUnit.NANOSECONDS);
                if (next != null) {
                    accept(next);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            int abandoned = 0;
            for (Prepared p : batcher.removeIf(p -> true)) {
                acks.add(p.record().origin(), Acknowledgements.Kind.ABANDONED);
                abandoned++;
            }
            for (PromptRecord r; (r = inbox.poll()) != null; abandoned++) {
                acks.add(r.origin(), Acknowledgements.Kind.ABANDONED);
            }
            LOG.info("engine thread stopped; {} queued prompts abandoned (they are read again after a restart)",
                    abandoned);
        }
    }

    private void accept(PromptRecord record) {
        if (!isCurrent.test(record.origin())) {
            acks.add(record.origin(), Acknowledgements.Kind.ABANDONED);
            return;
        }
        try {
            batcher.add(new Prepared(record, generator.prepare(record.request())), System.nanoTime());
        } catch (InvalidRequestException e) {
            deadLetters.send(record.source(), record.origin(), record.id(), DeadLetterReason.of(e.reason()), e);
        } catch (RuntimeException e) {
            deadLetters.send(record.source(), record.origin(), record.id(), DeadLetterReason.GENERATION_FAILED, e);
        }
    }

    private void runBlock(MicroBatcher.Batch<Prepared> batch) {
        List<Prepared> live = new ArrayList<>(batch.size());
        for (Prepared p : batch.items()) {
            if (isCurrent.test(p.record().origin())) {
                live.add(p);
            } else {
                acks.add(p.record().origin(), Acknowledgements.Kind.ABANDONED);
            }
        }
        if (live.isEmpty()) {
            return;
        }
        LOG.info("batch {} formed: {} prompts, bucket {} tokens, {} still queued", batch.id(), live.size(),
                batch.paddedPromptTokens(), batcher.size() + inbox.size());
        metrics.blockStarted(live.size(), Math.max(1, sizer.targetSize(batch.paddedPromptTokens())),
                batcher.size() + inbox.size());
        complete(live, batch, 0);
    }

    /** Generates {@code items}; on failure bisects, and a single failing prompt becomes a dead letter. */
    private void complete(List<Prepared> items, MicroBatcher.Batch<Prepared> batch, int depth) {
        long start = System.nanoTime();
        List<GenerationResult> results;
        try {
            results = generator.generate(items.stream().map(Prepared::prompt).toList(),
                    new BlockProgress(batch.id(), items.size(), PROGRESS_LOG_NANOS, metrics));
            if (results.size() != items.size()) {
                throw new IllegalStateException("the engine returned " + results.size() + " results for "
                        + items.size() + " prompts");
            }
        } catch (RuntimeException | LinkageError | AssertionError e) {
            if (items.size() == 1) {
                Prepared p = items.getFirst();
                deadLetters.send(p.record().source(), p.record().origin(), p.record().id(),
                        DeadLetterReason.GENERATION_FAILED, e);
                return;
            }
            LOG.warn("batch {}: generate failed on {} prompts ({}); retrying as two halves", batch.id(), items.size(),
                    e.toString());
            int half = items.size() / 2;
            complete(items.subList(0, half), batch, depth + 1);
            complete(items.subList(half, items.size()), batch, depth + 1);
            return;
        }
        long nanos = System.nanoTime() - start;
        BlockStats stats = new BlockStats(batch.id(), items.size(), batch.policy(), start, nanos / 1_000_000);
        long tokens = 0;
        for (int i = 0; i < items.size(); i++) {
            Prepared p = items.get(i);
            GenerationResult result = results.get(i);
            tokens += result.tokenIds().length;
            try {
                publisher.publish(p.record(), result, generator.modelName(), stats);
            } catch (RuntimeException e) {
                // The producer refuses only when it is closing or the record is invalid (e.g. too large).
                LOG.error("cannot publish the completion of {}: {}", p.record().id(), e.toString());
                acks.add(p.record().origin(), Acknowledgements.Kind.FAILED);
            }
        }
        completions.addAndGet(items.size());
        generatedTokens.addAndGet(tokens);
        generationNanos.addAndGet(nanos);
        blocks.incrementAndGet();
        metrics.blockDone(items.size(), tokens, nanos);
        double seconds = nanos / 1e9;
        LOG.info("block done: batch {}{} size {}, {} new tokens in {} s, {} tokens/s", batch.id(),
                depth == 0 ? "" : " (part)", items.size(), tokens, String.format("%.3f", seconds),
                String.format("%.1f", seconds > 0 ? tokens / seconds : 0.0));
    }

    /** Completions handed to the publisher so far. */
    public long completions() {
        return completions.get();
    }

    /** Tokens generated so far, over all blocks. */
    public long generatedTokens() {
        return generatedTokens.get();
    }

    /** Wall time spent inside {@code generate}, nanoseconds. */
    public long generationNanos() {
        return generationNanos.get();
    }

    public long blocks() {
        return blocks.get();
    }
}
