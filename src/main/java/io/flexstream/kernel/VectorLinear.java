package io.flexstream.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The register- and cache-blocked body of {@link CpuKernels#linear}: {@code out = x w^T + b} over a rectangle of
 * the output, against operand panels that the caller packed once per call.
 *
 * <p>Formulation: outer products, GotoBLAS-style. Of the two operands, the "panel" one is repacked into panels of
 * {@code PANEL = 2 * LANES} lines stored k-major ({@code panel[p][c]}); the "broadcast" one is copied row-major in
 * blocks of {@code BLOCK} lines. The micro-kernel broadcasts one float from each of 6 broadcast lines and multiplies
 * it by the two vectors of the panel at the same p, so 12 vector accumulators hold a 6 x PANEL tile. That is 15
 * vector registers, which fits AVX2's 16. A dot-product formulation (vectors along k, horizontal sums at the end)
 * needs no repacking but measured about half the GFLOP/s per core here.
 *
 * <p>Which operand is packed: the one with fewer lines (see {@link CpuKernels#linear}). With many rows (prefill) w
 * is packed and x rows are broadcast; with few rows (decode) x is packed (tiny) and w rows are broadcast, so w is
 * only copied in contiguous runs (a memcpy), never transposed element by element: a scalar transpose of w costs
 * about as much as the decode-sized product itself.
 *
 * <p>Cache blocking along k: the product is accumulated in slices of {@code KC} (default 256) values of p. One
 * panel's slice ({@code KC * PANEL} floats, 16 KiB) stays in L1 while every micro-row of the broadcast block runs
 * against it; the block's slice ({@code BLOCK * KC} floats) stays in L2. The partial sums live in a per-thread heap
 * array between slices. Without the slices a panel is k * 64 bytes (48 KiB at k = 768, 192 KiB at k = 3072) and
 * came from L2 on every micro-kernel call.
 *
 * <p>Measured (single thread, GFLOP per thread-CPU-second, best of alternating calls with the previous version in
 * one JVM, machine load 3-14 from other builds, November 2026). In one JVM the previous version of this class
 * (whole-k panels, packing per task, fresh arrays per call) ran 29-31 on every prefill shape and 27-28 on decode,
 * this one 67-73 on prefill and 41-60 on decode (fc2 41, qkv 60, fc1 49, lm_head 46). In later JVMs the previous
 * version got a good C2 compilation and ran 70-78 on the k = 768 prefill shapes against this one's 64-73, 37-52 on
 * prefill fc2 (k = 3072) against 55-66, and the same 50-57 on decode fc1. So this version wins on k = 3072 and
 * depends less on the compilation, and is about 5% behind the previous one at its best on k = 768. The
 * micro-kernel alone on L1-resident data reached 80-90. Tried and dropped: broadcasting w straight from the
 * segment in decode instead of copying it (lm_head 31-33 against 43-49: segment loads keep their checks), and a
 * slice-outer loop order for decode (lm_head 33-39 against 48-54).
 *
 * <p>Batch invariance: whichever operand is packed and wherever the element sits, out[i][j] is the chain
 * {@code acc = fma(x[i][p], w[j][p], acc)} for p = 0, 1, ..., k-1 from acc = +0, then {@code acc + bias[j]}. Slicing
 * k stores the running fp32 accumulator and reloads it unchanged, so the chain is the same; IEEE fma is commutative
 * in its two factors, so both packings give the same bits; lines padded with zeros or duplicated at the ragged
 * edges never mix into a real element. Nothing depends on m, the row, the split or the thread.
 *
 * <p>Heap copies rather than direct segment reads because C2 removes the bounds checks of int-indexed array loops
 * but not of segment loads (measured ~30%, and again in decode above).
 */
final class VectorLinear {

    private static final VectorSpecies<Float> S = LaneSum.SPECIES;
    private static final int LANES = LaneSum.LANES;
    /** Lines per packed panel: two vectors. */
    static final int PANEL = 2 * LANES;
    /** Broadcast lines per micro-kernel call. */
    private static final int ROWS = 6;
    /** Values of p per k slice: one panel slice is KC * PANEL * 4 bytes (16 KiB at 256 with 8 lanes), half an L1. */
    private static final int KC = Math.max(1, Integer.getInteger("flexstream.kernel.kc", 256));
    /** Broadcast lines per block (a multiple of ROWS): the block's k slice is BLOCK * KC * 4 bytes of L2. */
    private static final int BLOCK = Math.max(1, Integer.getInteger("flexstream.kernel.block", 96) / ROWS) * ROWS;
    /**
     * Panels per column group: within a block, all k slices of one group of panels are done before the next group,
     * so the group's slices (GROUP * 16 KiB) and its partial sums (BLOCK * GROUP * PANEL floats) stay in L2 next to
     * the block's slice, however many columns the task has.
     */
    private static final int GROUP = Math.max(1, Integer.getInteger("flexstream.kernel.group", 6));
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    private VectorLinear() {
    }

    /** Per-thread arrays reused from call to call: fresh arrays would be zeroed and cold in cache on every call. */
    private static final class Scratch {
        float[] panels = new float[0];
        float[] lines = new float[0];
        float[] acc = new float[0];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static float[] atLeast(float[] a, int length) {
        return a.length >= length ? a : new float[length];
    }

    /** Panels needed for {@code lines} lines. */
    static int panelCount(int lines) {
        return (lines + PANEL - 1) / PANEL;
    }

    /**
     * An array of the calling thread large enough for the panels of {@code lines} lines of k values; it stays
     * valid until that thread's next call here. The caller of a linear packs into it (with {@link #pack}, possibly
     * from several threads, disjoint panels each) and every task of that call reads it.
     */
    static float[] sharedPanels(int lines, int k) {
        Scratch s = SCRATCH.get();
        s.panels = atLeast(s.panels, panelCount(lines) * k * PANEL);
        return s.panels;
    }

    /**
     * Packs panels [q0, q1) of the first {@code lines} lines of a row-major [lines][k] matrix: panel q holds lines
     * q*PANEL + c at {@code panels[q*k*PANEL + p*PANEL + c]}, so a k slice of a panel is contiguous; the slots of
     * the last panel past the last line are zeroed.
     */
    static void pack(MemorySegment matrix, int lines, int k, float[] panels, int q0, int q1) {
        float[] line = new float[k];
        for (int l = q0 * PANEL; l < Math.min(lines, q1 * PANEL); l++) {
            MemorySegment.copy(matrix, F, 4L * l * k, line, 0, k);
            int base = (l / PANEL) * k * PANEL + l % PANEL;
            for (int p = 0; p < k; p++) {
                panels[base + p * PANEL] = line[p];
            }
        }
        int used = lines % PANEL;
        if (used != 0 && q1 == panelCount(lines)) {
            int base = (q1 - 1) * k * PANEL;
            for (int p = 0; p < k; p++) {
                Arrays.fill(panels, base + p * PANEL + used, base + (p + 1) * PANEL, 0f);
            }
        }
    }

    /**
     * out[i][j] for i in [i0, i1) and the columns of w panels [q0, q1), broadcasting x rows against w's packed
     * panels: for many rows (prefill), which amortise the packing of w (about one cycle per element, scalar).
     */
    static void broadcastX(MemorySegment x, float[] wPanels, MemorySegment bias, MemorySegment out, int n, int k,
                           int i0, int i1, int q0, int q1) {
        int j0 = q0 * PANEL, j1 = Math.min(n, q1 * PANEL);
        if (i0 >= i1 || j0 >= j1) {
            return;
        }
        product(x, i0, i1, wPanels, q0 * k * PANEL, j1 - j0, k,
                new Output(out, n, biasRow(bias, j0, j1), true, j0), SCRATCH.get());
    }

    /**
     * out[i][j] for every row i in [0, m) and j in [j0, j1), broadcasting w rows against x's packed panels: for
     * few rows (decode), where packing w would cost as much as the product.
     */
    static void broadcastW(float[] xPanels, int m, MemorySegment w, MemorySegment bias, MemorySegment out, int n,
                           int k, int j0, int j1) {
        if (m <= 0 || j0 >= j1) {
            return;
        }
        product(w, j0, j1, xPanels, 0, m, k, new Output(out, n, biasRow(bias, j0, j1), false, j0), SCRATCH.get());
    }

    /** bias[j0..j1) padded by a panel, so that a full panel's bias loads as vectors; null without bias. */
    private static float[] biasRow(MemorySegment bias, int j0, int j1) {
        if (bias == null) {
            return null;
        }
        float[] row = new float[j1 - j0 + PANEL];
        MemorySegment.copy(bias, F, 4L * j0, row, 0, j1 - j0);
        return row;
    }

    /**
     * Where the accumulated tile goes: element (broadcast line a, panel line b) is out[a][b] when x is broadcast and
     * out[b][a] when w is; the bias is indexed by the w line.
     */
    private record Output(MemorySegment out, int n, float[] biasRow, boolean broadcastX, int j0) {
    }

    /**
     * acc[a][b] = sum over p of bc[a][p] * panel line b at p, for broadcast lines [a0, a1) of the row-major
     * [lines][k] segment bc and the panelLines packed lines whose first panel starts at panels[first], written
     * through {@code output}.
     */
    private static void product(MemorySegment bc, int a0, int a1, float[] panels, int first, int panelLines, int k,
                                Output output, Scratch s) {
        int panelCount = (panelLines + PANEL - 1) / PANEL;
        int width = panelCount * PANEL; // accumulator row length: whole panels, padding columns dropped at the end
        int block = Math.min(BLOCK, a1 - a0);
        int blockRows = (block + ROWS - 1) / ROWS * ROWS;
        float[] lines = s.lines = atLeast(s.lines, block * k);
        float[] acc = s.acc = atLeast(s.acc, blockRows * width);
        for (int ab = a0; ab < a1; ab += block) {
            int count = Math.min(a1, ab + block) - ab;
            MemorySegment.copy(bc, F, 4L * ab * k, lines, 0, count * k);
            Arrays.fill(acc, 0, blockRows * width, 0f);
            int last = count - 1; // micro-rows past the block's end repeat its last line; their sums are dropped
            for (int g = 0; g < panelCount; g += GROUP) { // the group's panel slices and sums stay in L2
                for (int pc = 0; pc < k; pc += KC) {
                    int kc = Math.min(KC, k - pc);
                    for (int q = g; q < Math.min(panelCount, g + GROUP); q++) {
                        int panelBase = first + q * k * PANEL + pc * PANEL;
                        for (int r = 0; r < count; r += ROWS) {
                            microKernel(lines, Math.min(r, last) * k + pc, Math.min(r + 1, last) * k + pc,
                                    Math.min(r + 2, last) * k + pc, Math.min(r + 3, last) * k + pc,
                                    Math.min(r + 4, last) * k + pc, Math.min(r + 5, last) * k + pc,
                                    panels, panelBase, kc, acc, r * width + q * PANEL, width);
                        }
                    }
                }
            }
            write(acc, width, ab, count, panelLines, output);
        }
    }

    /** Adds the bias to the finished sums of broadcast lines [a, a + count) and stores them in out. */
    private static void write(float[] acc, int width, int a, int count, int panelLines, Output o) {
        float[] biasRow = o.biasRow();
        int b0 = o.broadcastX() ? o.j0() : 0; // panel lines are w rows from j0, or every x row
        if (o.broadcastX()) { // acc row t is out row a + t, columns b0 + c
            for (int t = 0; t < count; t++) {
                long row = (long) (a + t) * o.n() + b0;
                int c = 0;
                for (; c + LANES <= panelLines; c += LANES) {
                    FloatVector v = FloatVector.fromArray(S, acc, t * width + c);
                    if (biasRow != null) { // the same single rounded add per element as the scalar path
                        v = v.add(FloatVector.fromArray(S, biasRow, c));
                    }
                    v.intoMemorySegment(o.out(), 4 * (row + c), NATIVE);
                }
                for (; c < panelLines; c++) {
                    float v = acc[t * width + c];
                    o.out().setAtIndex(F, row + c, biasRow == null ? v : v + biasRow[c]);
                }
            }
        } else { // acc row t is out column a + t, acc column c is out row b0 + c
            // Gathered into a heap row, then one bulk copy per out row: a checked segment store per element
            // measured 3% of the whole generate benchmark.
            float[] row = new float[count];
            for (int c = 0; c < panelLines; c++) {
                for (int t = 0; t < count; t++) {
                    float v = acc[t * width + c];
                    row[t] = biasRow == null ? v : v + biasRow[a + t - o.j0()];
                }
                MemorySegment.copy(row, 0, o.out(), F, 4L * ((long) (b0 + c) * o.n() + a), count);
            }
        }
    }

    /**
     * acc[t][c] += sum over p in [0, kc) of src[rowT + p] * panels[base + p*PANEL + c], for the 6 broadcast lines t
     * (offsets r0..r5 into src) and the PANEL lines c: continues each element's fma chain in p order, reading and
     * writing the running sums at {@code acc[accBase + t*accStride + c]}.
     */
    static void microKernel(float[] src, int r0, int r1, int r2, int r3, int r4, int r5,
                                    float[] panels, int base, int kc, float[] acc, int accBase, int accStride) {
        int a0 = accBase, a1 = a0 + accStride, a2 = a1 + accStride, a3 = a2 + accStride, a4 = a3 + accStride;
        int a5 = a4 + accStride;
        FloatVector c00 = FloatVector.fromArray(S, acc, a0), c01 = FloatVector.fromArray(S, acc, a0 + LANES);
        FloatVector c10 = FloatVector.fromArray(S, acc, a1), c11 = FloatVector.fromArray(S, acc, a1 + LANES);
        FloatVector c20 = FloatVector.fromArray(S, acc, a2), c21 = FloatVector.fromArray(S, acc, a2 + LANES);
        FloatVector c30 = FloatVector.fromArray(S, acc, a3), c31 = FloatVector.fromArray(S, acc, a3 + LANES);
        FloatVector c40 = FloatVector.fromArray(S, acc, a4), c41 = FloatVector.fromArray(S, acc, a4 + LANES);
        FloatVector c50 = FloatVector.fromArray(S, acc, a5), c51 = FloatVector.fromArray(S, acc, a5 + LANES);
        for (int p = 0; p < kc; p++) {
            int o = base + p * PANEL;
            FloatVector b0 = FloatVector.fromArray(S, panels, o);
            FloatVector b1 = FloatVector.fromArray(S, panels, o + LANES);
            FloatVector a = FloatVector.broadcast(S, src[r0 + p]);
            c00 = a.fma(b0, c00); c01 = a.fma(b1, c01);
            a = FloatVector.broadcast(S, src[r1 + p]);
            c10 = a.fma(b0, c10); c11 = a.fma(b1, c11);
            a = FloatVector.broadcast(S, src[r2 + p]);
            c20 = a.fma(b0, c20); c21 = a.fma(b1, c21);
            a = FloatVector.broadcast(S, src[r3 + p]);
            c30 = a.fma(b0, c30); c31 = a.fma(b1, c31);
            a = FloatVector.broadcast(S, src[r4 + p]);
            c40 = a.fma(b0, c40); c41 = a.fma(b1, c41);
            a = FloatVector.broadcast(S, src[r5 + p]);
            c50 = a.fma(b0, c50); c51 = a.fma(b1, c51);
        }
        c00.intoArray(acc, a0); c01.intoArray(acc, a0 + LANES);
        c10.intoArray(acc, a1); c11.intoArray(acc, a1 + LANES);
        c20.intoArray(acc, a2); c21.intoArray(acc, a2 + LANES);
        c30.intoArray(acc, a3); c31.intoArray(acc, a3 + LANES);
        c40.intoArray(acc, a4); c41.intoArray(acc, a4 + LANES);
        c50.intoArray(acc, a5); c51.intoArray(acc, a5 + LANES);
    }
}
