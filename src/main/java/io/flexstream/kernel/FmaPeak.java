package io.flexstream.kernel;

import java.util.Arrays;
import java.util.concurrent.CountDownLatch;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * This machine's fp32 fused multiply-add rate right now: every thread runs twelve independent vector fma chains on
 * values held in registers, so nothing but the fma units bounds it. A benchmark prints it beside its own GFLOP/s to
 * tell a slower build from a slower host: on the shared build VM the same jar generated 69 or 92 tokens/s on
 * different afternoons, and this rate moves with it.
 */
public final class FmaPeak {

    private static final VectorSpecies<Float> S = LaneSum.SPECIES;
    /** Independent chains per thread: enough to cover the fma latency (4-5 cycles) at two fma per cycle. */
    private static final int CHAINS = 12;

    private FmaPeak() {
    }

    /** Float lanes per vector on this machine (8 with AVX2, 16 with AVX-512). */
    public static int lanes() {
        return S.length();
    }

    /**
     * Median over {@code trials} of the GFLOP/s of {@code threads} threads running fma chains for {@code iterations}
     * rounds each (2 flops per lane per fma), after one untimed trial that lets the JIT compile the loop.
     */
    public static double gflops(int threads, long iterations, int trials) {
        double[] rates = new double[trials];
        run(threads, Math.max(1, iterations / 10));
        for (int t = 0; t < trials; t++) {
            long nanos = run(threads, iterations);
            rates[t] = threads * (double) iterations * CHAINS * S.length() * 2 / nanos;
        }
        Arrays.sort(rates);
        return rates[trials / 2];
    }

    /** Wall nanoseconds for every thread to finish its chains, started together. */
    private static long run(int threads, long iterations) {
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
                sinks[index] = chains(iterations);
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

    /** Twelve fma chains; the result is returned so the JIT cannot drop the work. */
    static float chains(long iterations) {
        FloatVector a = FloatVector.broadcast(S, 0.999999f);
        FloatVector b = FloatVector.broadcast(S, 1e-7f);
        FloatVector c0 = FloatVector.broadcast(S, 1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        FloatVector c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (long i = 0; i < iterations; i++) {
            c0 = c0.fma(a, b); c1 = c1.fma(a, b); c2 = c2.fma(a, b); c3 = c3.fma(a, b);
            c4 = c4.fma(a, b); c5 = c5.fma(a, b); c6 = c6.fma(a, b); c7 = c7.fma(a, b);
            c8 = c8.fma(a, b); c9 = c9.fma(a, b); c10 = c10.fma(a, b); c11 = c11.fma(a, b);
        }
        return c0.add(c1).add(c2).add(c3).add(c4).add(c5).add(c6).add(c7).add(c8).add(c9).add(c10).add(c11)
                .reduceLanes(VectorOperators.ADD);
    }
}
