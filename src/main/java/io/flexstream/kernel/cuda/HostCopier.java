package io.flexstream.kernel.cuda;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.IntConsumer;

/**
 * Host-side copies between the engine's tensors and pinned staging memory, spread over a few threads. One thread
 * moves roughly 10 GB/s on a server while a PCIe 4/5 copy engine moves 25 to 50 GB/s, so with a single copying thread
 * the host memcpy, not the bus, would bound every transfer of the cuda backend. Small copies stay on the caller.
 */
final class HostCopier implements AutoCloseable {

    /** Below this many bytes a copy is not split: handing pieces to threads costs more than it saves. */
    static final long SPLIT_BYTES = 4L << 20;

    private final int threads;
    private final ExecutorService pool;

    /** {@code threads} copying threads, the caller's included (1 = no pool). */
    HostCopier(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.pool = threads == 1 ? null : Executors.newFixedThreadPool(threads - 1,
                r -> Thread.ofPlatform().daemon().name("flexstream-cuda-copy").unstarted(r));
    }

    /** {@code bytes} from {@code src + srcOffset} to {@code dst + dstOffset}, split into pieces when large. */
    void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long bytes) {
        int pieces = (int) Math.min(threads, bytes / SPLIT_BYTES);
        if (pieces <= 1) {
            MemorySegment.copy(src, srcOffset, dst, dstOffset, bytes);
            return;
        }
        forEach(pieces, p -> {
            long from = bytes * p / pieces;
            long to = bytes * (p + 1) / pieces;
            MemorySegment.copy(src, srcOffset + from, dst, dstOffset + from, to - from);
        });
    }

    /** Runs {@code body} for tasks 0..count-1 on the copying threads (the caller takes task 0); returns when done. */
    void forEach(int count, IntConsumer body) {
        if (pool == null || count <= 1) {
            for (int t = 0; t < count; t++) {
                body.accept(t);
            }
            return;
        }
        int workers = Math.min(threads, count);
        List<Future<?>> helpers = new ArrayList<>(workers - 1);
        for (int w = 1; w < workers; w++) {
            int worker = w;
            helpers.add(pool.submit(() -> {
                for (int t = worker; t < count; t += workers) {
                    body.accept(t);
                }
            }));
        }
        for (int t = 0; t < count; t += workers) {
            body.accept(t);
        }
        try {
            for (Future<?> f : helpers) {
                f.get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while staging a transfer", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("staging copy failed: " + e.getCause(), e.getCause());
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
