package io.flexstream.stream;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.function.Predicate;
import java.util.function.ToIntFunction;

/**
 * Groups validated prompts into batches that share one padded prompt-length bucket, so a batch wastes little compute
 * on padding. A bucket is the prompt's token count rounded up to a power of two (at least {@link #MIN_BUCKET}).
 *
 * <p>A bucket releases a batch when it holds the sizer's target for that bucket ("full"), or when its oldest prompt
 * has waited {@code linger} ("expired"), whichever comes first; an expired bucket releases what it has, up to the
 * target. Full buckets go before expired ones, and among expired ones the one that has waited longest goes first, so
 * no bucket starves. Within a bucket prompts leave in arrival order.
 *
 * <p>Not thread-safe: the engine thread owns it. Time is passed in ({@link System#nanoTime()} values) so tests need no
 * clock.
 *
 * @param <T> the queued item
 */
public final class MicroBatcher<T> {

    /** Smallest bucket, in tokens: tiny prompts share one bucket rather than 1, 2, 4, 8. */
    public static final int MIN_BUCKET = 8;

    /**
     * A batch ready for the engine.
     *
     * @param id                 node-local sequence number, from 1
     * @param paddedPromptTokens the bucket: every prompt has at most this many tokens
     * @param items              prompts in arrival order
     * @param policy             the sizer's description
     */
    public record Batch<T>(long id, int paddedPromptTokens, List<T> items, String policy) {
        public int size() {
            return items.size();
        }
    }

    private record Entry<T>(T item, long addedNanos) {
    }

    private final BatchSizer sizer;
    private final long lingerNanos;
    private final ToIntFunction<T> promptTokens;
    private final TreeMap<Integer, ArrayDeque<Entry<T>>> buckets = new TreeMap<>();
    private long nextBatchId = 1;
    private int size;

    /**
     * @param sizer        target size per bucket
     * @param lingerNanos  longest a prompt waits for its bucket to fill, nanoseconds (0: release at once)
     * @param promptTokens the prompt length of an item, in tokens
     */
    public MicroBatcher(BatchSizer sizer, long lingerNanos, ToIntFunction<T> promptTokens) {
        this.sizer = sizer;
        this.lingerNanos = lingerNanos;
        this.promptTokens = promptTokens;
    }

    /** The bucket of a prompt of {@code tokens} tokens: the next power of two, at least {@link #MIN_BUCKET}. */
    public static int bucketOf(int tokens) {
        if (tokens <= MIN_BUCKET) {
            return MIN_BUCKET;
        }
        int bucket = Integer.highestOneBit(tokens);
        return bucket == tokens ? bucket : bucket << 1;
    }

    public void add(T item, long nowNanos) {
        buckets.computeIfAbsent(bucketOf(promptTokens.applyAsInt(item)), b -> new ArrayDeque<>())
                .addLast(new Entry<>(item, nowNanos));
        size++;
    }

    /** The next batch that is full or expired at {@code nowNanos}, if any. */
    public Optional<Batch<T>> poll(long nowNanos) {
        Integer chosen = null;
        long oldest = Long.MAX_VALUE;
        for (Map.Entry<Integer, ArrayDeque<Entry<T>>> e : buckets.entrySet()) {
            if (e.getValue().size() >= target(e.getKey())) {
                chosen = e.getKey();
                break;
            }
            long added = e.getValue().peekFirst().addedNanos();
            if (nowNanos - added >= lingerNanos && added < oldest) {
                oldest = added;
                chosen = e.getKey();
            }
        }
        return chosen == null ? Optional.empty() : Optional.of(take(chosen));
    }

    /**
     * When the next bucket expires ({@code nanoTime} scale); {@link Long#MAX_VALUE} when empty. A full bucket is
     * ready now, so the engine thread should call {@link #poll(long)} before waiting until this deadline.
     */
    public long nextDeadlineNanos() {
        long deadline = Long.MAX_VALUE;
        for (ArrayDeque<Entry<T>> queue : buckets.values()) {
            deadline = Math.min(deadline, queue.peekFirst().addedNanos() + lingerNanos);
        }
        return deadline;
    }

    /** Removes and returns every queued item matching {@code condition} (e.g. prompts of partitions lost). */
    public List<T> removeIf(Predicate<T> condition) {
        List<T> removed = new ArrayList<>();
        Iterator<ArrayDeque<Entry<T>>> queues = buckets.values().iterator();
        while (queues.hasNext()) {
            ArrayDeque<Entry<T>> queue = queues.next();
            queue.removeIf(entry -> {
                if (condition.test(entry.item())) {
                    removed.add(entry.item());
                    return true;
                }
                return false;
            });
            if (queue.isEmpty()) {
                queues.remove();
            }
        }
        size -= removed.size();
        return removed;
    }

    /** Number of queued items. */
    public int size() {
        return size;
    }

    private int target(int bucket) {
        return Math.max(1, sizer.targetSize(bucket));
    }

    private Batch<T> take(int bucket) {
        ArrayDeque<Entry<T>> queue = buckets.get(bucket);
        int n = Math.min(queue.size(), target(bucket));
        List<T> items = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            items.add(queue.pollFirst().item());
        }
        if (queue.isEmpty()) {
            buckets.remove(bucket);
        }
        size -= n;
        return new Batch<>(nextBatchId++, bucket, List.copyOf(items), sizer.describe(bucket, n));
    }
}
