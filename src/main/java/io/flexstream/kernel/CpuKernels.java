package io.flexstream.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fast CPU backend: Vector API ({@code FloatVector.SPECIES_PREFERRED}, any lane count) on a fixed pool of
 * threads. Work is split into independent tasks (rectangles of a linear layer's output, row ranges, sequences of
 * attention), and every output element is computed by exactly one task with an operation order that depends
 * only on the shapes that define it (k, dim, headDim), never on m, on its row or on the split: that is the batch
 * invariance {@link Kernels} requires. See {@link VectorLinear} and {@link VectorAttention} for the per-op orders.
 *
 * <p>Owns its worker threads: close it when done (they are daemons, so a forgotten instance does not block exit).
 */
public final class CpuKernels implements Kernels, AutoCloseable {

    private static final VectorSpecies<Float> S = LaneSum.SPECIES;
    private static final int LANES = LaneSum.LANES;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    /** Elementwise ops below this many floats run on the calling thread: handing out tasks costs more. */
    private static final long ELEMENTWISE_PARALLEL_MIN = 1 << 16;
    /**
     * Floating-point operations per linear task at least (~0.1 ms of work): waking a helper costs microseconds on an
     * idle machine and milliseconds on a busy one, so small calls (decode q/k/v) use fewer tasks.
     */
    private static final long DEFAULT_MIN_TASK_FLOPS = 4_000_000;

    /** Columns per task at least, where n allows, when w is the packed operand (see {@link #linear}). */
    private static final int PREFILL_COLUMNS = 384;

    private final WorkerPool pool;
    private final long minTaskFlops;

    /** A backend using every core. */
    public CpuKernels() {
        this(Runtime.getRuntime().availableProcessors());
    }

    public CpuKernels(int threads) {
        this(threads, DEFAULT_MIN_TASK_FLOPS);
    }

    /** Tests lower {@code minTaskFlops} so that even small shapes are split over threads. */
    CpuKernels(int threads, long minTaskFlops) {
        this.pool = new WorkerPool(threads);
        this.minTaskFlops = Math.max(1, minTaskFlops);
    }

    /** Threads the kernels run on (the calling thread included). */
    public int threads() {
        return pool.threads();
    }

    @Override
    public String name() {
        return "cpu-vector(" + pool.threads() + " threads, " + LANES + " lanes)";
    }

    /**
     * Packs the smaller operand once per call into panels shared by every task, then splits the output. Packing
     * (a scalar transpose, about a cycle per element) is amortised over the other operand's lines, so x is packed
     * when m < n (decode: x is 32 rows, w thousands of rows) and w otherwise (prefill: 4096 rows); large packings
     * are split over the threads by panel.
     *
     * <p>x packed: tasks split the columns (w rows), so each streams a distinct part of w, the operand that
     * dominates the memory traffic.
     *
     * <p>w packed: tasks are rectangles of whole panels by row ranges. A task copies each block of its x rows once
     * and runs it against all its columns, so columns per task are kept at {@link #PREFILL_COLUMNS} or more where
     * n allows (with 96 columns per task the copies of x are, by estimate, about 15% of the work at k = 768).
     *
     * <p>Tasks outnumber threads up to 4:1 so a thread slowed by a neighbour process does not hold up the call.
     */
    @Override
    public void linear(MemorySegment x, MemorySegment w, MemorySegment bias, MemorySegment out, int m, int n, int k) {
        if (m <= 0 || n <= 0) {
            return;
        }
        long flops = 2L * m * n * k;
        int target = (int) Math.max(1, Math.min(4L * pool.threads(), flops / minTaskFlops));
        boolean packX = m < n;
        MemorySegment packed = packX ? x : w;
        int lines = packX ? m : n;
        int panelCount = VectorLinear.panelCount(lines);
        float[] panels = VectorLinear.sharedPanels(lines, k);
        int packTasks = (long) lines * k < ELEMENTWISE_PARALLEL_MIN ? 1 : Math.min(panelCount, pool.threads());
        pool.parallelFor(packTasks, t -> VectorLinear.pack(packed, lines, k, panels,
                panelCount * t / packTasks, panelCount * (t + 1) / packTasks));
        if (packX) {
            int nGroups = (n + 3) / 4;
            int nTasks = Math.min(nGroups, target);
            pool.parallelFor(nTasks, task -> {
                int j0 = Math.min(n, 4 * (int) ((long) nGroups * task / nTasks));
                int j1 = Math.min(n, 4 * (int) ((long) nGroups * (task + 1) / nTasks));
                VectorLinear.broadcastW(panels, m, w, bias, out, n, k, j0, j1);
            });
            return;
        }
        int nTasks = Math.max(1, Math.min(Math.min(panelCount, target), n / PREFILL_COLUMNS));
        int mGroups = (m + 5) / 6; // row ranges in whole micro-tiles of 6
        int mTasks = Math.min(mGroups, Math.max(1, target / nTasks));
        pool.parallelFor(nTasks * mTasks, task -> {
            int tm = task / nTasks, tn = task % nTasks;
            int i0 = Math.min(m, 6 * (int) ((long) mGroups * tm / mTasks));
            int i1 = Math.min(m, 6 * (int) ((long) mGroups * (tm + 1) / mTasks));
            VectorLinear.broadcastX(x, panels, bias, out, n, k, i0, i1,
                    panelCount * tn / nTasks, panelCount * (tn + 1) / nTasks);
        });
    }

    /** Two passes per row (mean, then the sum of squared deviations), each a vector sum in fixed lane order. */
    @Override
    public void layerNorm(MemorySegment x, MemorySegment gamma, MemorySegment beta, MemorySegment out, int rows,
                          int dim, float eps) {
        int tasks = Math.min(rows, 4 * pool.threads());
        if ((long) rows * dim < ELEMENTWISE_PARALLEL_MIN) {
            tasks = Math.min(rows, 1);
        }
        int taskCount = tasks;
        pool.parallelFor(taskCount, task -> {
            int r0 = (int) ((long) rows * task / taskCount), r1 = (int) ((long) rows * (task + 1) / taskCount);
            float[] lanes = new float[LANES];
            for (int r = r0; r < r1; r++) {
                normalizeRow(x, gamma, beta, out, 4L * r * dim, dim, eps, lanes);
            }
        });
    }

    private static void normalizeRow(MemorySegment x, MemorySegment gamma, MemorySegment beta, MemorySegment out,
                                     long rowBytes, int dim, float eps, float[] lanes) {
        int main = dim - dim % LANES;
        FloatVector acc = FloatVector.zero(S);
        for (int c = 0; c < main; c += LANES) {
            acc = acc.add(load(x, rowBytes + 4L * c));
        }
        acc.intoArray(lanes, 0);
        float sum = LaneSum.fold(lanes, 0);
        for (int c = main; c < dim; c++) {
            sum += x.get(F, rowBytes + 4L * c);
        }
        float mean = sum / dim;
        acc = FloatVector.zero(S);
        for (int c = 0; c < main; c += LANES) {
            FloatVector d = load(x, rowBytes + 4L * c).sub(mean);
            acc = d.fma(d, acc);
        }
        acc.intoArray(lanes, 0);
        float squares = LaneSum.fold(lanes, 0);
        for (int c = main; c < dim; c++) {
            float d = x.get(F, rowBytes + 4L * c) - mean;
            squares = Math.fma(d, d, squares);
        }
        float rstd = (float) (1.0 / Math.sqrt(squares / dim + eps));
        for (int c = 0; c < main; c += LANES) {
            FloatVector y = load(x, rowBytes + 4L * c).sub(mean).mul(rstd);
            if (gamma != null) {
                y = y.mul(load(gamma, 4L * c));
            }
            if (beta != null) {
                y = y.add(load(beta, 4L * c));
            }
            y.intoMemorySegment(out, rowBytes + 4L * c, NATIVE);
        }
        for (int c = main; c < dim; c++) {
            float y = (x.get(F, rowBytes + 4L * c) - mean) * rstd;
            if (gamma != null) {
                y *= gamma.getAtIndex(F, c);
            }
            if (beta != null) {
                y += beta.getAtIndex(F, c);
            }
            out.set(F, rowBytes + 4L * c, y);
        }
    }

    @Override
    public void relu(MemorySegment x, long n) {
        elementwise(n, (from, to) -> {
            long main = from + (to - from) / LANES * LANES;
            for (long i = from; i < main; i += LANES) {
                load(x, 4 * i).max(0f).intoMemorySegment(x, 4 * i, NATIVE);
            }
            for (long i = main; i < to; i++) {
                x.setAtIndex(F, i, Math.max(x.getAtIndex(F, i), 0f));
            }
        });
    }

    @Override
    public void scale(MemorySegment x, long n, float factor) {
        elementwise(n, (from, to) -> {
            long main = from + (to - from) / LANES * LANES;
            for (long i = from; i < main; i += LANES) {
                load(x, 4 * i).mul(factor).intoMemorySegment(x, 4 * i, NATIVE);
            }
            for (long i = main; i < to; i++) {
                x.setAtIndex(F, i, x.getAtIndex(F, i) * factor);
            }
        });
    }

    @Override
    public void add(MemorySegment acc, MemorySegment x, long n) {
        elementwise(n, (from, to) -> {
            long main = from + (to - from) / LANES * LANES;
            for (long i = from; i < main; i += LANES) {
                load(acc, 4 * i).add(load(x, 4 * i)).intoMemorySegment(acc, 4 * i, NATIVE);
            }
            for (long i = main; i < to; i++) {
                acc.setAtIndex(F, i, acc.getAtIndex(F, i) + x.getAtIndex(F, i));
            }
        });
    }

    private interface Range {
        void run(long from, long to);
    }

    private void elementwise(long n, Range body) {
        if (n < ELEMENTWISE_PARALLEL_MIN || pool.threads() == 1) {
            body.run(0, n);
            return;
        }
        int tasks = pool.threads();
        pool.parallelFor(tasks, t -> body.run(n * t / tasks, n * (t + 1) / tasks));
    }

    @Override
    public void attention(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment keyValid,
                          MemorySegment out, int batch, int qLen, int kvLen, int capacity, int heads, int headDim) {
        if (qLen > kvLen || kvLen > capacity) {
            throw new IllegalArgumentException(
                    "need qLen <= kvLen <= capacity, got " + qLen + ", " + kvLen + ", " + capacity);
        }
        var shape = new VectorAttention.Shape(batch, qLen, kvLen, capacity, heads, headDim);
        pool.parallelFor(batch, b -> VectorAttention.sequence(q, kCache, vCache, keyValid, out, shape, b));
    }

    @Override
    public void close() {
        pool.close();
    }

    private static FloatVector load(MemorySegment s, long byteOffset) {
        return FloatVector.fromMemorySegment(S, s, byteOffset, NATIVE);
    }
}
