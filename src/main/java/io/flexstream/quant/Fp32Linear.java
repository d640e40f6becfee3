package io.flexstream.quant;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The fp32 baseline of {@link QuantBenchmark}: the same loop structure as {@link QuantizedLinear} (tiles of output rows
 * over threads, four input rows per weight vector, vector FMA) over an fp32 weight, so that the ratio measures the
 * weight format and not a difference in blocking. Not used by the engine, whose fp32 kernels live in the kernel package.
 */
final class Fp32Linear implements AutoCloseable {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final int TILE = 16;

    private final int threads;
    private final ExecutorService pool;

    Fp32Linear(int threads) {
        this.threads = threads;
        this.pool = threads > 1 ? Executors.newFixedThreadPool(threads - 1, r -> {
            Thread t = new Thread(r, "fp32-linear");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    /** {@code out[i][j] = sum_p x[i][p] * w[j][p]}, w is n x k fp32; k must be a multiple of the lane count. */
    void linear(MemorySegment x, MemorySegment w, MemorySegment out, int m, int n, int k) {
        if (k % L != 0) {
            throw new IllegalArgumentException("baseline needs k % " + L + " == 0");
        }
        int tiles = (n + TILE - 1) / TILE;
        AtomicInteger next = new AtomicInteger();
        Runnable worker = () -> {
            float[] lanes = new float[L];
            for (int t; (t = next.getAndIncrement()) < tiles; ) {
                int j1 = Math.min(n, t * TILE + TILE);
                int i = 0;
                for (; i + 4 <= m; i += 4) {
                    for (int j = t * TILE; j < j1; j++) {
                        dot4(x, w, out, i, j, n, k, lanes);
                    }
                }
                for (; i < m; i++) {
                    for (int j = t * TILE; j < j1; j++) {
                        long xb = (long) i * k * 4;
                        long wb = (long) j * k * 4;
                        FloatVector a = FloatVector.zero(F);
                        for (int p = 0; p < k; p += L) {
                            a = FloatVector.fromMemorySegment(F, x, xb + p * 4L, NATIVE)
                                    .fma(FloatVector.fromMemorySegment(F, w, wb + p * 4L, NATIVE), a);
                        }
                        store(a, out, i, j, n, lanes);
                    }
                }
            }
        };
        List<Future<?>> futures = new ArrayList<>();
        for (int h = 0; pool != null && h < Math.min(threads, tiles) - 1; h++) {
            futures.add(pool.submit(worker));
        }
        worker.run();
        try {
            for (Future<?> f : futures) {
                f.get();
            }
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static void dot4(MemorySegment x, MemorySegment w, MemorySegment out, int i, int j, int n, int k,
                             float[] lanes) {
        long rb = (long) k * 4;
        long x0 = i * rb;
        long wb = j * rb;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        for (int p = 0; p < k; p += L) {
            long off = p * 4L;
            FloatVector wv = FloatVector.fromMemorySegment(F, w, wb + off, NATIVE);
            a0 = FloatVector.fromMemorySegment(F, x, x0 + off, NATIVE).fma(wv, a0);
            a1 = FloatVector.fromMemorySegment(F, x, x0 + rb + off, NATIVE).fma(wv, a1);
            a2 = FloatVector.fromMemorySegment(F, x, x0 + 2 * rb + off, NATIVE).fma(wv, a2);
            a3 = FloatVector.fromMemorySegment(F, x, x0 + 3 * rb + off, NATIVE).fma(wv, a3);
        }
        store(a0, out, i, j, n, lanes);
        store(a1, out, i + 1, j, n, lanes);
        store(a2, out, i + 2, j, n, lanes);
        store(a3, out, i + 3, j, n, lanes);
    }

    private static void store(FloatVector a, MemorySegment out, int i, int j, int n, float[] lanes) {
        a.intoArray(lanes, 0);
        float s = 0f;
        for (float v : lanes) {
            s += v;
        }
        out.setAtIndex(QuantizedMatrix.F32, (long) i * n + j, s);
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
