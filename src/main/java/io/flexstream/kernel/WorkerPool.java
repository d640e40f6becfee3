package io.flexstream.kernel;

import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

/**
 * A fixed set of daemon worker threads that run {@code parallelFor} loops: tasks 0..count-1 are handed out one at a
 * time from a shared counter, and the calling thread works too, so a pool of {@code threads} uses {@code threads - 1}
 * helpers. Dynamic hand-out (rather than a static split) matters on this machine: the two cores are shared with
 * other processes, and a statically split loop waits for whichever core was stolen.
 *
 * <p>The caller waits for the tasks, not for the helpers: on an oversubscribed machine a woken helper may get a core
 * only milliseconds later, and a decode-sized call is over by then. A helper that starts late finds no task left and
 * returns at once (its job only holds the counter of its own call).
 *
 * <p>Which thread runs a task never changes what the task computes; kernels keep results independent of the split.
 * Loops must not be nested (a task must not call {@link #parallelFor}); kernel calls from several threads at once
 * are serialized.
 */
public final class WorkerPool implements AutoCloseable {

    private final int threads;
    private final Thread[] helpers;
    private final BlockingQueue<Runnable> jobs;
    private volatile boolean closed;

    public WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.jobs = new LinkedBlockingQueue<>();
        this.helpers = new Thread[threads - 1];
        for (int i = 0; i < helpers.length; i++) {
            helpers[i] = Thread.ofPlatform().daemon().name("flexstream-kernel-" + i).start(this::serve);
        }
    }

    public int threads() {
        return threads;
    }

    /** Runs {@code body.accept(task)} for every task in [0, count), on all threads; returns when all are done. */
    public synchronized void parallelFor(int count, IntConsumer body) {
        if (closed) {
            throw new IllegalStateException("kernel worker pool is closed");
        }
        int helpersUsed = Math.min(helpers.length, count - 1);
        if (helpersUsed <= 0) {
            for (int t = 0; t < count; t++) {
                body.accept(t);
            }
            return;
        }
        AtomicInteger next = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(count);
        Runnable drain = () -> drain(next, count, body, failure, done);
        for (int i = 0; i < helpersUsed; i++) {
            jobs.add(drain);
        }
        drain.run();
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for kernel workers", e);
        }
        Throwable t = failure.get();
        if (t instanceof RuntimeException r) {
            throw r;
        } else if (t instanceof Error e) {
            throw e;
        }
    }

    private static void drain(AtomicInteger next, int count, IntConsumer body, AtomicReference<Throwable> failure,
                              CountDownLatch done) {
        int task;
        while ((task = next.getAndIncrement()) < count) {
            try {
                if (failure.get() == null) { // after a failure the rest are only counted off; the caller rethrows
                    body.accept(task);
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            } finally {
                done.countDown();
            }
        }
    }

    private void serve() {
        while (!closed) {
            try {
                jobs.take().run();
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread helper : helpers) {
            helper.interrupt();
        }
    }
}
