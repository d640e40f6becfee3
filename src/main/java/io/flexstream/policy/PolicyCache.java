package io.flexstream.policy;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Policies per length bucket, for a consumer that forms micro-batches of prompts of varying lengths: a prompt of
 * {@code s} tokens asking for {@code n} new tokens falls into the bucket whose upper bounds are s and n rounded UP to
 * multiples of the steps, and the whole bucket runs with the policy searched for those upper bounds (every sequence of a
 * block is padded to the bucket's prompt length, so the bound is what the block really costs). A bucket's policy is
 * searched once and kept; a partial block (fewer sequences than the bucket's block size, sent after the linger time)
 * gets its own search capped at its size, cached per size too.
 *
 * <p>Thread-safe: concurrent requests for one key search once (the others wait); different keys search in parallel.
 * Infeasible buckets are cached too, and rethrow their {@link InfeasiblePolicyException}.
 */
public final class PolicyCache {

    /**
     * @param promptBucket prompt tokens, the bucket's upper bound
     * @param genBucket    generated tokens, the bucket's upper bound
     * @param maxBlockSize cap on gbs x nb (0: none)
     */
    public record Key(int promptBucket, int genBucket, int maxBlockSize) {
    }

    private record Entry(Solution solution, InfeasiblePolicyException failure) {
    }

    private final PolicySearch search;
    private final Workload template;
    private final Pins pins;
    private final int promptStep;
    private final int genStep;
    private final ConcurrentHashMap<Key, Entry> entries = new ConcurrentHashMap<>();
    private final AtomicInteger searches = new AtomicInteger();

    /**
     * @param template   model, compression and delegation of every request; its lengths are ignored
     * @param pins       pins applied to every search (a block-size cap is added for partial blocks)
     * @param promptStep prompt bucket width in tokens, positive (e.g. 64)
     * @param genStep    generation bucket width in tokens, positive (e.g. 16)
     */
    public PolicyCache(PolicySearch search, Workload template, Pins pins, int promptStep, int genStep) {
        if (promptStep <= 0 || genStep <= 0) {
            throw new IllegalArgumentException("bucket steps must be positive, got " + promptStep + " and " + genStep);
        }
        this.search = search;
        this.template = template;
        this.pins = pins;
        this.promptStep = promptStep;
        this.genStep = genStep;
    }

    /** The policy for a full block of requests of up to these lengths. */
    public Solution policyFor(int promptLen, int genLen) {
        return lookup(key(promptLen, genLen, 0));
    }

    /** The policy for a partial block of {@code sequences} requests (gbs x nb at most {@code sequences}). */
    public Solution policyForPartialBlock(int promptLen, int genLen, int sequences) {
        if (sequences <= 0) throw new IllegalArgumentException("a partial block needs at least one sequence, got " + sequences);
        return lookup(key(promptLen, genLen, sequences));
    }

    /** The bucket a request falls into. */
    public Key key(int promptLen, int genLen, int maxBlockSize) {
        if (promptLen <= 0 || genLen <= 0) {
            throw new IllegalArgumentException("prompt and generation lengths must be positive, got " + promptLen + " and " + genLen);
        }
        return new Key(roundUp(promptLen, promptStep), roundUp(genLen, genStep), maxBlockSize);
    }

    /** Searches run so far (cache misses). */
    public int searches() {
        return searches.get();
    }

    /** Buckets cached. */
    public int size() {
        return entries.size();
    }

    private Solution lookup(Key k) {
        Entry e = entries.computeIfAbsent(k, this::compute);
        if (e.failure != null) throw e.failure;
        return e.solution;
    }

    private Entry compute(Key k) {
        searches.incrementAndGet();
        Pins p = k.maxBlockSize() > 0 ? pins.withMaxBlockSize(k.maxBlockSize()) : pins;
        try {
            return new Entry(search.search(template.withLengths(k.promptBucket(), k.genBucket()), p).best(), null);
        } catch (InfeasiblePolicyException e) {
            return new Entry(null, e);
        }
    }

    private static int roundUp(int v, int step) {
        return Math.multiplyExact((v + step - 1) / step, step);
    }
}
