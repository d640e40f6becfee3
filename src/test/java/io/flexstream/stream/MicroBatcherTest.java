package io.flexstream.stream;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Items are strings whose length is their prompt length in tokens. */
class MicroBatcherTest {

    private static final long MS = 1_000_000;

    private static MicroBatcher<String> batcher(int size, long lingerMs) {
        return new MicroBatcher<>(BatchSizer.fixed(size), lingerMs * MS, String::length);
    }

    @Test
    void bucketsArePowersOfTwoWithAFloor() {
        assertEquals(8, MicroBatcher.bucketOf(1));
        assertEquals(8, MicroBatcher.bucketOf(8));
        assertEquals(16, MicroBatcher.bucketOf(9));
        assertEquals(16, MicroBatcher.bucketOf(16));
        assertEquals(1024, MicroBatcher.bucketOf(1000));
    }

    @Test
    void aFullBucketIsReleasedAtOnceInArrivalOrder() {
        MicroBatcher<String> b = batcher(3, 1_000);
        b.add("aa", 0);
        b.add("bb", 0);
        assertEquals(Optional.empty(), b.poll(1));
        b.add("cc", 0);
        b.add("dd", 0);
        MicroBatcher.Batch<String> batch = b.poll(1).orElseThrow();
        assertEquals(List.of("aa", "bb", "cc"), batch.items());
        assertEquals(8, batch.paddedPromptTokens());
        assertEquals(1, batch.id());
        assertEquals("fixed(batch=3)", batch.policy());
        assertEquals(1, b.size());
    }

    @Test
    void batchesNeverMixBuckets() {
        MicroBatcher<String> b = batcher(2, 1_000);
        b.add("short", 0);
        b.add("x".repeat(20), 0);
        assertEquals(Optional.empty(), b.poll(1), "two half-full buckets, neither full");
        b.add("tiny", 0);
        MicroBatcher.Batch<String> batch = b.poll(1).orElseThrow();
        assertEquals(List.of("short", "tiny"), batch.items());
    }

    @Test
    void lingerReleasesAPartialBatchOldestBucketFirst() {
        MicroBatcher<String> b = batcher(8, 100);
        b.add("x".repeat(20), 10 * MS);     // bucket 32, older
        b.add("a", 30 * MS);                // bucket 8
        assertEquals(110 * MS, b.nextDeadlineNanos());
        assertEquals(Optional.empty(), b.poll(109 * MS));
        MicroBatcher.Batch<String> first = b.poll(200 * MS).orElseThrow();
        assertEquals(32, first.paddedPromptTokens());
        MicroBatcher.Batch<String> second = b.poll(200 * MS).orElseThrow();
        assertEquals(List.of("a"), second.items());
        assertEquals(Long.MAX_VALUE, b.nextDeadlineNanos());
        assertEquals(0, b.size());
    }

    @Test
    void removeIfTakesItemsOutOfEveryBucket() {
        MicroBatcher<String> b = batcher(4, 100);
        b.add("lost-1", 0);
        b.add("kept", 0);
        b.add("lost-" + "y".repeat(30), 0);
        List<String> removed = b.removeIf(s -> s.startsWith("lost"));
        assertEquals(2, removed.size());
        assertEquals(1, b.size());
        assertEquals(List.of("kept"), b.poll(1_000 * MS).orElseThrow().items());
    }

    @Test
    void aSizerMayChooseASizePerBucket() {
        BatchSizer perBucket = new BatchSizer() {
            @Override
            public int targetSize(int paddedPromptTokens) {
                return paddedPromptTokens >= 32 ? 1 : 4;
            }

            @Override
            public String describe() {
                return "per-bucket";
            }
        };
        MicroBatcher<String> b = new MicroBatcher<>(perBucket, 1_000 * MS, String::length);
        b.add("x".repeat(30), 0);
        b.add("a", 0);
        MicroBatcher.Batch<String> batch = b.poll(1).orElseThrow();
        assertEquals(1, batch.size());
        assertTrue(batch.items().getFirst().length() == 30);
    }
}
