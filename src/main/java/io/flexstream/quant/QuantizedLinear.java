package io.flexstream.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A linear layer over a 4-bit {@link QuantizedMatrix}: {@code out[i][j] = bias[j] + sum_p x[i][p] * W'[j][p]} where W'
 * is the dequantized weight, with the same contract as {@code io.flexstream.kernel.Kernels#linear} (x is m x k, out
 * m x n, fp32 native order, segments shared across threads).
 *
 * <p>The vector kernel never materialises W': per weight row and group it loads the group's {@code groupSize / 8}
 * words and unpacks each nibble position into a float vector of codes (shift, mask, int-to-float; see the layout in
 * {@link QuantizedMatrix}), dequantizes it in the register with one FMA ({@code q * (1 / scale) + min}, the division
 * by FlexGen's scale done once per group) and multiplies it into the accumulators of the input rows it meets; see
 * {@link NibbleKernels}. Register blocks: 8 (then 4) input rows x 1 weight row while at least 4 rows remain, 1 input
 * row x 4 weight rows for the rest (decode: four independent FMA chains, and the weight bytes are what bounds it).
 * From 16 input rows on (prefill) four weight rows at a time are dequantized into a 4 x k scratch instead and swept
 * against an L2-sized block of inputs with 4x4 tiles ({@link TileKernels}), paying the unpacking once per block. The
 * input is copied once per call into a heap array with rows zero-padded to whole groups, so the inner loops need
 * neither masked loads nor segment bounds checks. Threads split the output rows in tiles (16 rows, 64 on the prefill
 * path) taken from a counter.
 *
 * <p>Batch invariance: for a given (x row, weight row) every block of both paths performs the same operations in the
 * same order, so an output element does not depend on m, on its row's position, on the tile or on the thread (the
 * tests compare bits). The fused result differs from {@link #linearReference} by fp32 rounding only (the reference
 * divides by the scale per element and sums sequentially; the kernel multiplies by its reciprocal and sums in lanes).
 *
 * <p>The vector path needs the group's word count {@code groupSize / 8} to be a multiple of the lane count (any
 * multiple of 64 with 8 lanes); other group sizes take the scalar reference.
 */
public final class QuantizedLinear implements AutoCloseable {

    private static final int L = NibbleKernels.L;
    private static final ValueLayout.OfFloat F32 = QuantizedMatrix.F32;
    /** Output rows per task: small enough to balance two to sixteen threads, large enough to amortise the hand-off. */
    private static final int TILE = Integer.getInteger("flexstream.quant.tile", 16) / 4 * 4;
    /**
     * Output rows per task on the prefill path: each task sweeps all of x once per L2 block, so larger tiles re-read
     * x fewer times (n / 64 passes; 128 tasks at n = 8192, 32 at n = 2048).
     */
    private static final int PREFILL_TILE = Integer.getInteger("flexstream.quant.prefillTile", 64) / 4 * 4;
    /** From this many input rows on, dequantize weight rows into a scratch once per row block ({@link TileKernels}). */
    private static final int TILE_MIN_ROWS = Integer.getInteger("flexstream.quant.tileMinRows", 16);
    /**
     * Floats added to the row stride of the input copy and of the prefill scratch. With k = 2048 rows are 8 KiB apart,
     * so the 4 input and 4 weight streams of a 4x4 tile all map to the same L1 sets; whether they then evict each other
     * depended on where the heap placed the two arrays, and prefill ran at 15 or 37 GFLOP/s from one JVM to the next.
     * One 64-byte line of skew per row spreads them over different sets.
     */
    private static final int ROW_SKEW = 16;
    /** Input rows per block are sized so that the block fits this many bytes (a typical L2 share). */
    private static final long L2_BYTES = Long.getLong("flexstream.quant.l2Bytes", 256 * 1024);

    private final int threads;
    private final ExecutorService pool;

    /** A kernel running on {@code threads} threads (the caller's included); 1 means no pool. */
    public QuantizedLinear(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.pool = threads > 1 ? Executors.newFixedThreadPool(threads - 1, r -> {
            Thread t = new Thread(r, "quant-linear");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    public String name() {
        return "quant4-vector(" + L + " lanes, " + threads + " threads)";
    }

    /**
     * The oracle: dequantize each weight row to fp32 (FlexGen's decode), then a plain sequential fp32 dot product.
     */
    public static void linearReference(MemorySegment x, QuantizedMatrix w, MemorySegment bias, MemorySegment out,
                                       int m, int n, int k) {
        checkShape(w, n, k);
        float[] row = new float[k];
        for (int j = 0; j < n; j++) {
            w.dequantizeRow(j, row);
            for (int i = 0; i < m; i++) {
                float s = 0f;
                for (int p = 0; p < k; p++) {
                    s += x.getAtIndex(F32, (long) i * k + p) * row[p];
                }
                out.setAtIndex(F32, (long) i * n + j, s + (bias == null ? 0f : bias.getAtIndex(F32, j)));
            }
        }
    }

    /** The fused vector kernel; see the class comment. */
    public void linear(MemorySegment x, QuantizedMatrix w, MemorySegment bias, MemorySegment out, int m, int n, int k) {
        checkShape(w, n, k);
        int g = w.groupSize();
        if ((g / 8) % L != 0) {
            linearReference(x, w, bias, out, m, n, k);
            return;
        }
        int kp = w.groupsPerRow() * g;
        int stride = kp + ROW_SKEW;
        float[] xp = padded(x, m, k, stride);
        AtomicInteger next = new AtomicInteger();
        if (m >= TILE_MIN_ROWS && TileKernels.supports(g)) {
            int tiles = (n + PREFILL_TILE - 1) / PREFILL_TILE;
            runParallel(() -> prefillTiles(xp, w, bias, out, m, n, kp, stride, next, tiles), tiles);
            return;
        }
        int tiles = (n + TILE - 1) / TILE;
        Runnable worker = () -> {
            float[] lanes = new float[8 * L];
            for (int t; (t = next.getAndIncrement()) < tiles; ) {
                int j0 = t * TILE;
                int j1 = Math.min(n, j0 + TILE);
                int i = 0;
                for (; i + 8 <= m; i += 8) {
                    for (int j = j0; j < j1; j++) {
                        NibbleKernels.dot8x1(xp, w, i, j, stride, lanes);
                        for (int q = 0; q < 8; q++) {
                            put(out, bias, i + q, j, n, NibbleKernels.sum(lanes, q));
                        }
                    }
                }
                for (; i + 4 <= m; i += 4) {
                    for (int j = j0; j < j1; j++) {
                        NibbleKernels.dot4x1(xp, w, i, j, stride, lanes);
                        for (int q = 0; q < 4; q++) {
                            put(out, bias, i + q, j, n, NibbleKernels.sum(lanes, q));
                        }
                    }
                }
                for (; i < m; i++) {
                    int j = j0;
                    for (; j + 4 <= j1; j += 4) {
                        NibbleKernels.dot1x4(xp, w, i, j, stride, lanes);
                        for (int q = 0; q < 4; q++) {
                            put(out, bias, i, j + q, n, NibbleKernels.sum(lanes, q));
                        }
                    }
                    for (; j < j1; j++) {
                        NibbleKernels.dot1x1(xp, w, i, j, stride, lanes);
                        put(out, bias, i, j, n, NibbleKernels.sum(lanes, 0));
                    }
                }
            }
        };
        runParallel(worker, tiles);
    }

    /**
     * The prefill path ({@link TileKernels}): per tile of output rows, per block of input rows sized for L2, each group
     * of four weight rows is dequantized into a scratch and swept with 4x4 register tiles. Results are bit-identical
     * to the register path's.
     */
    private static void prefillTiles(float[] xp, QuantizedMatrix w, MemorySegment bias, MemorySegment out, int m,
                                     int n, int kp, int stride, AtomicInteger next, int tiles) {
        float[] ws = new float[4 * stride];
        float[] lanes = new float[16 * L];
        int rowBlock = (int) Math.max(4, Math.min(m, (L2_BYTES / (4L * stride)) & ~3L));
        for (int t; (t = next.getAndIncrement()) < tiles; ) {
            int j0 = t * PREFILL_TILE;
            int j1 = Math.min(n, j0 + PREFILL_TILE);
            for (int ib = 0; ib < m; ib += rowBlock) {
                int ie = Math.min(m, ib + rowBlock);
                int j = j0;
                for (; j + 4 <= j1; j += 4) {
                    TileKernels.dequantize4(w, j, stride, ws);
                    int i = ib;
                    for (; i + 4 <= ie; i += 4) {
                        TileKernels.tile4x4(xp, i, ws, kp, stride, lanes);
                        for (int q = 0; q < 16; q++) {
                            put(out, bias, i + q / 4, j + q % 4, n, NibbleKernels.sum(lanes, q));
                        }
                    }
                    for (; i < ie; i++) {
                        TileKernels.tile1x4(xp, i, ws, kp, stride, lanes);
                        for (int q = 0; q < 4; q++) {
                            put(out, bias, i, j + q, n, NibbleKernels.sum(lanes, q));
                        }
                    }
                }
                for (; j < j1; j++) {
                    for (int i = ib; i < ie; i++) {
                        NibbleKernels.dot1x1(xp, w, i, j, stride, lanes);
                        put(out, bias, i, j, n, NibbleKernels.sum(lanes, 0));
                    }
                }
            }
        }
    }

    /** out[i][j] = dot + bias[j]: the bias is added last, in every block alike. */
    private static void put(MemorySegment out, MemorySegment bias, int i, int j, int n, float dot) {
        out.setAtIndex(F32, (long) i * n + j, bias == null ? dot : dot + bias.getAtIndex(F32, j));
    }

    /** x copied into m rows {@code stride} floats apart, zero from column k on. */
    private static float[] padded(MemorySegment x, int m, int k, int stride) {
        float[] xp = new float[Math.multiplyExact(m, stride)];
        for (int i = 0; i < m; i++) {
            MemorySegment.copy(x, F32, (long) i * k * Float.BYTES, xp, i * stride, k);
        }
        return xp;
    }

    private void runParallel(Runnable worker, int tasks) {
        int helpers = pool == null ? 0 : Math.min(threads, tasks) - 1;
        List<Future<?>> futures = new ArrayList<>(helpers);
        for (int h = 0; h < helpers; h++) {
            futures.add(pool.submit(worker));
        }
        worker.run();
        try {
            for (Future<?> f : futures) {
                f.get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted in quantized linear", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("quantized linear worker failed", e.getCause());
        }
    }

    private static void checkShape(QuantizedMatrix w, int n, int k) {
        if (w.rows() != n || w.cols() != k) {
            throw new IllegalArgumentException("weight is " + w.rows() + "x" + w.cols() + ", expected " + n + "x" + k);
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
