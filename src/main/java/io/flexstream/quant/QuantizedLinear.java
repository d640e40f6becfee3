package io.flexstream.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
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
 * <p>The vector kernel never materialises W': per weight row and group it loads {@code groupSize / 2} bytes, unpacks
 * them into float vectors of codes (shift and mask, then a byte-to-float conversion), accumulates
 * {@code d = sum_t x_t q_t} in vector lanes, and folds the group in as {@code acc += d / scale} (one division per group,
 * FlexGen's decode is {@code q / scale + min}); the min term is {@code min * sum_t x_t}, where the input's group sums
 * are computed once per call. Four input rows share each unpacked weight vector. Threads split the output rows in
 * tiles taken from a counter.
 *
 * <p>Batch invariance: for a given (x row, weight row) the kernel performs the same operations in the same order
 * whatever m, the row's position in a block of four, the tile or the thread; lanes are summed sequentially from an
 * array (not with {@code reduceLanes}, whose order may differ between interpreted and compiled code).
 *
 * <p>The vector path needs {@code groupSize / 2} to be a multiple of the float lane count (64 works for 4, 8 and 16
 * lanes); other group sizes take the scalar reference.
 */
public final class QuantizedLinear implements AutoCloseable {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** Bytes species with as many lanes as F: L bytes unpack into 2 x L codes. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8));
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F32 = QuantizedMatrix.F32;
    /** Input rows sharing one unpacked weight vector (register blocking). */
    private static final int ROW_BLOCK = 4;
    /** Output rows per task: small enough to balance two to sixteen threads, large enough to amortise the hand-off. */
    private static final int TILE = Integer.getInteger("flexstream.quant.tile", 16);

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
        if ((g / 2) % L != 0) {
            linearReference(x, w, bias, out, m, n, k);
            return;
        }
        float[] xsum = groupSums(x, m, k, g, w.groupsPerRow());
        int tiles = (n + TILE - 1) / TILE;
        AtomicInteger next = new AtomicInteger();
        Runnable worker = () -> {
            float[] lanes = new float[L];
            for (int t; (t = next.getAndIncrement()) < tiles; ) {
                int j0 = t * TILE;
                int j1 = Math.min(n, j0 + TILE);
                int i = 0;
                for (; i + ROW_BLOCK <= m; i += ROW_BLOCK) {
                    for (int j = j0; j < j1; j++) {
                        dot4(x, w, bias, out, xsum, i, j, n, k, lanes);
                    }
                }
                for (; i < m; i++) {
                    for (int j = j0; j < j1; j++) {
                        dot1(x, w, bias, out, xsum, i, j, n, k, lanes);
                    }
                }
            }
        };
        runParallel(worker, tiles);
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

    /** Per input row and group, the sequential fp32 sum of the real (unpadded) inputs: [m][groupsPerRow]. */
    static float[] groupSums(MemorySegment x, int m, int k, int g, int gpr) {
        float[] sums = new float[m * gpr];
        for (int i = 0; i < m; i++) {
            for (int p = 0; p < k; p++) {
                sums[i * gpr + p / g] += x.getAtIndex(F32, (long) i * k + p);
            }
        }
        return sums;
    }

    /** One output element y[i][j]. Operation order must match {@link #dot4} lane for lane. */
    private static void dot1(MemorySegment x, QuantizedMatrix w, MemorySegment bias, MemorySegment out, float[] xsum,
                             int i, int j, int n, int k, float[] lanes) {
        int g = w.groupSize();
        int half = g / 2;
        int gpr = w.groupsPerRow();
        MemorySegment packed = w.packed();
        MemorySegment meta = w.metadata();
        long xRow = (long) i * k * Float.BYTES;
        FloatVector acc = FloatVector.zero(F);
        float minTerm = 0f;
        for (int gr = 0; gr < gpr; gr++) {
            long slot = (long) j * gpr + gr;
            int c0 = gr * g;
            boolean full = c0 + g <= k;
            FloatVector d = FloatVector.zero(F);
            for (int c = 0; c < half; c += L) {
                ByteVector b = ByteVector.fromMemorySegment(B, packed, slot * half + c, NATIVE);
                FloatVector hi = (FloatVector) b.lanewise(VectorOperators.LSHR, 4).and((byte) 0xF)
                        .convertShape(VectorOperators.B2F, F, 0);
                FloatVector lo = (FloatVector) b.and((byte) 0xF).convertShape(VectorOperators.B2F, F, 0);
                d = loadX(x, xRow, c0 + c, k, full).fma(hi, d);
                d = loadX(x, xRow, c0 + half + c, k, full).fma(lo, d);
            }
            float scale = Float.float16ToFloat(meta.get(QuantizedMatrix.FP16, slot * 4));
            float mn = Float.float16ToFloat(meta.get(QuantizedMatrix.FP16, slot * 4 + 2));
            acc = d.fma(FloatVector.broadcast(F, 1f / scale), acc);
            minTerm += mn * xsum[i * gpr + gr];
        }
        store(acc, minTerm, bias, out, i, j, n, lanes);
    }

    /** Output elements y[i..i+3][j]: each row's operations are exactly those of {@link #dot1}. */
    private static void dot4(MemorySegment x, QuantizedMatrix w, MemorySegment bias, MemorySegment out, float[] xsum,
                             int i, int j, int n, int k, float[] lanes) {
        int g = w.groupSize();
        int half = g / 2;
        int gpr = w.groupsPerRow();
        MemorySegment packed = w.packed();
        MemorySegment meta = w.metadata();
        long rowBytes = (long) k * Float.BYTES;
        long x0 = i * rowBytes;
        long x1 = x0 + rowBytes;
        long x2 = x1 + rowBytes;
        long x3 = x2 + rowBytes;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        float m0 = 0f;
        float m1 = 0f;
        float m2 = 0f;
        float m3 = 0f;
        for (int gr = 0; gr < gpr; gr++) {
            long slot = (long) j * gpr + gr;
            int c0 = gr * g;
            boolean full = c0 + g <= k;
            FloatVector d0 = FloatVector.zero(F);
            FloatVector d1 = d0;
            FloatVector d2 = d0;
            FloatVector d3 = d0;
            for (int c = 0; c < half; c += L) {
                ByteVector b = ByteVector.fromMemorySegment(B, packed, slot * half + c, NATIVE);
                FloatVector hi = (FloatVector) b.lanewise(VectorOperators.LSHR, 4).and((byte) 0xF)
                        .convertShape(VectorOperators.B2F, F, 0);
                FloatVector lo = (FloatVector) b.and((byte) 0xF).convertShape(VectorOperators.B2F, F, 0);
                int ch = c0 + c;
                int cl = c0 + half + c;
                d0 = loadX(x, x0, ch, k, full).fma(hi, d0);
                d0 = loadX(x, x0, cl, k, full).fma(lo, d0);
                d1 = loadX(x, x1, ch, k, full).fma(hi, d1);
                d1 = loadX(x, x1, cl, k, full).fma(lo, d1);
                d2 = loadX(x, x2, ch, k, full).fma(hi, d2);
                d2 = loadX(x, x2, cl, k, full).fma(lo, d2);
                d3 = loadX(x, x3, ch, k, full).fma(hi, d3);
                d3 = loadX(x, x3, cl, k, full).fma(lo, d3);
            }
            float scale = Float.float16ToFloat(meta.get(QuantizedMatrix.FP16, slot * 4));
            float mn = Float.float16ToFloat(meta.get(QuantizedMatrix.FP16, slot * 4 + 2));
            FloatVector step = FloatVector.broadcast(F, 1f / scale);
            a0 = d0.fma(step, a0);
            a1 = d1.fma(step, a1);
            a2 = d2.fma(step, a2);
            a3 = d3.fma(step, a3);
            int s = i * gpr + gr;
            m0 += mn * xsum[s];
            m1 += mn * xsum[s + gpr];
            m2 += mn * xsum[s + 2 * gpr];
            m3 += mn * xsum[s + 3 * gpr];
        }
        store(a0, m0, bias, out, i, j, n, lanes);
        store(a1, m1, bias, out, i + 1, j, n, lanes);
        store(a2, m2, bias, out, i + 2, j, n, lanes);
        store(a3, m3, bias, out, i + 3, j, n, lanes);
    }

    /** L inputs from element {@code col} of the row at byte offset {@code rowBase}; zeros past k in the padded group. */
    private static FloatVector loadX(MemorySegment x, long rowBase, int col, int k, boolean full) {
        if (full) {
            return FloatVector.fromMemorySegment(F, x, rowBase + (long) col * Float.BYTES, NATIVE);
        }
        VectorMask<Float> mask = F.indexInRange(col, k);
        // an all-false mask (col >= k) reads nothing; keep the offset inside the row anyway
        return FloatVector.fromMemorySegment(F, x, rowBase + (long) Math.min(col, k - 1) * Float.BYTES, NATIVE, mask);
    }

    /** Lanes summed in index order, then the min term, then the bias: a fixed order for batch invariance. */
    private static void store(FloatVector acc, float minTerm, MemorySegment bias, MemorySegment out, int i, int j, int n,
                              float[] lanes) {
        acc.intoArray(lanes, 0);
        float s = 0f;
        for (float v : lanes) {
            s += v;
        }
        s += minTerm;
        if (bias != null) {
            s += bias.getAtIndex(F32, j);
        }
        out.setAtIndex(F32, (long) i * n + j, s);
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
