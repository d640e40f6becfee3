package io.flexstream.kernel;

import java.util.Arrays;
import java.util.concurrent.CountDownLatch;


/**
 * This machine's fp32 fused multiply-add rate right now, as the engine's own micro-kernel reaches it: every thread
 * runs {@link VectorLinear}'s 6 x 16 register tile over operands small enough to stay in L1 (one k slice of a panel
 * and six broadcast lines), so nothing but the core bounds it. A benchmark prints it beside its own GFLOP/s to tell a
 * slower build from a slower host: on the shared build VM the same jar generated 69 or 92 tokens/s on different
 * afternoons, and this rate moves with it. It is the ceiling of the engine's matrix products; what they lose below
 * it is blocking, packing and memory traffic. (An earlier probe of twelve independent {@code c = c * a + b} chains
 * read 79 GFLOP/s on one thread and 115-120 on two where this tile reached 87 and 145-165 in the same minutes, so
 * it understated the host by a quarter.)
 */
public final class FmaPeak {

    /** Values of p per tile call: one 16 KiB panel slice, as {@link VectorLinear} slices k. */
    private static final int KC = 256;
    private static final int ROWS = 6;

    private FmaPeak() {
    }

    /** Float lanes per vector on this machine (8 with AVX2, 16 with AVX-512). */
    public static int lanes() {
        return LaneSum.LANES;
    }

    /** Floating-point operations of one tile call. */
    static double flopsPerCall() {
        return 2.0 * ROWS * VectorLinear.PANEL * KC;
    }

    /**
     * The rate now on {@code threads} threads, as the benchmarks print it beside their own: five trials of about 0.2 s
     * each (300 000 tile calls per thread), about a second in all.
     */
    public static double now(int threads) {
        return gflops(threads, 300_000, 5);
    }

    /**
     * Median over {@code trials} of the GFLOP/s of {@code threads} threads running {@code calls} tile calls each,
     * after one untimed trial that lets the JIT compile the loop.
     */
    public static double gflops(int threads, long calls, int trials) {
        double[] rates = new double[trials];
        run(threads, Math.max(1, calls / 10));
        for (int t = 0; t < trials; t++) {
            long nanos = run(threads, calls);
            rates[t] = threads * (double) calls * flopsPerCall() / nanos;
        }
        Arrays.sort(rates);
        return rates[trials / 2];
    }
    /** Wall nanoseconds for every thread to finish its chains, started together. */
    private static long run(int threads, long calls) {
        CountDownLatch start = new CountDownLatch(1);
        Thread[] workers = new Thread[threads];
        float[] sinks = new float[threads];
        for (int i = 0; i < threads; i++) {
            int index = i;
            workers[i] = Thread.ofPlatform().daemon().name("flexstream-fma-peak-" + i).start(() -> {
                try {
                    start.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
                sinks[index] = tile(calls);
            });
        }
        long begin = System.nanoTime();
        start.countDown();
        for (Thread w : workers) {
            try {
                w.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while measuring the fma rate", e);
            }
        }
        return System.nanoTime() - begin;
    }

    /**
     * {@code calls} calls of the micro-kernel on per-thread operands (all ones, so every sum is exact), accumulating
     * into one tile; returns a sum of the tile so the JIT cannot drop the work.
     */
    static float tile(long calls) {
        float[] lines = new float[ROWS * KC];
        float[] panel = new float[KC * VectorLinear.PANEL];
        float[] acc = new float[ROWS * VectorLinear.PANEL];
        Arrays.fill(lines, 1f);
        Arrays.fill(panel, 1f);
        for (long c = 0; c < calls; c++) {
            VectorLinear.microKernel(lines, 0, KC, 2 * KC, 3 * KC, 4 * KC, 5 * KC, panel, 0, KC, acc, 0,
                    VectorLinear.PANEL);
        }
        float sum = 0;
        for (float v : acc) {
            sum += v;
        }
        return sum;
    }
}
