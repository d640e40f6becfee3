package io.flexstream.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The register- and cache-blocked body of {@link CpuKernels#linear}: computes a rectangle of {@code out = x w^T + b}.
 *
 * <p>Formulation: outer products. One operand is repacked into panels of {@code PANEL = 2 * LANES} lines stored
 * k-major ({@code panel[p][c]}), the other stays row-major; the micro-kernel broadcasts one float from each of 6
 * rows of the row-major operand and multiplies it by the two vectors of the panel at the same p, so 12 vector
 * accumulators hold a 6 x PANEL tile of the output. That is 15 vector registers, which fits AVX2's 16 (AVX-512 has
 * 32). A dot-product formulation (vectors along k, horizontal sums at the end) needs no repacking but measured about
 * half the GFLOP/s per core here: 16 accumulators spill on AVX2 and every output pays a horizontal sum.
 *
 * <p>Which operand is packed depends on the rectangle, not on correctness: with many rows (prefill) a chunk of w is
 * transposed into panels once and x rows are broadcast; with few rows (decode) x is transposed (cheap) and w rows
 * are broadcast, so the large w is only read, never rewritten.
 *
 * <p>Batch invariance: whichever operand is packed and wherever the element sits, out[i][j] is the chain
 * {@code acc = fma(x[i][p], w[j][p], acc)} for p = 0, 1, ..., k-1 from acc = +0, then {@code acc + bias[j]}. IEEE
 * fma is commutative in its two factors, so both packings give the same bits, and rows or columns padded or
 * duplicated at the ragged edges never mix into a real element. Nothing depends on m, the row, or the thread.
 *
 * <p>Cache blocking: x rows are visited in blocks sized for L2 ({@code flexstream.kernel.l2Bytes}, default 256 KiB),
 * copied into a heap array; each w panel is swept over the whole block. Heap copies rather than direct segment
 * reads because C2 removes the bounds checks of int-indexed array loops but not of segment loads (measured ~30%).
 */
final class VectorLinear {

    private static final VectorSpecies<Float> S = LaneSum.SPECIES;
    private static final int LANES = LaneSum.LANES;
    /** Lines per packed panel: two vectors. */
    private static final int PANEL = 2 * LANES;
    /** Broadcast rows per micro-kernel call. */
    private static final int ROWS = 6;
    /**
     * The micro-kernel's p loop runs as an outer loop over chunks of this many p with an inner counted loop. Same
     * fma order as one plain loop; the split only changes how C2 compiles it. Measured with -XX:+UseParallelGC (the
     * benchmark's GC, whose default is no safepoints in counted loops, hence no loop strip mining): the plain loop
     * ran at ~35 GFLOP/s per core (every JVM run), the same loop under G1 (which strip-mines) at ~90, and the nested
     * form under ParallelGC at 45-77 in the engine's kernel (the level varies from one JVM run, i.e. one C2
     * compilation, to the next; never below the plain loop). Any chunk from 32 up helped; 256 measured best.
     * Unrolling the p loop by hand (two p per pass) measured worse (25-40).
     */
    private static final int CHUNK = Integer.getInteger("flexstream.kernel.chunk", 256);
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final long L2_BYTES = Long.getLong("flexstream.kernel.l2Bytes", 256 * 1024);

    private VectorLinear() {
    }

    /** Rows of x per L2 block for this k: at least ROWS. */
    static int rowBlock(int k) {
        long rows = L2_BYTES / (4L * Math.max(k, 1));
        return (int) Math.max(ROWS, Math.min(1 << 16, rows / ROWS * ROWS));
    }

    /** Computes out[i][j] for i in [i0, i1) and j in [j0, j1). */
    static void rectangle(MemorySegment x, MemorySegment w, MemorySegment bias, MemorySegment out, int n, int k,
                          int i0, int i1, int j0, int j1) {
        if (i0 >= i1 || j0 >= j1) {
            return;
        }
        float[] biasRow = null;
        if (bias != null) {
            biasRow = new float[j1 - j0 + PANEL]; // padded so a full panel's bias loads as vectors
            MemorySegment.copy(bias, F, 4L * j0, biasRow, 0, j1 - j0);
        }
        if (i1 - i0 >= j1 - j0) {
            packWeights(x, w, biasRow, out, n, k, i0, i1, j0, j1);
        } else {
            packInputs(x, w, biasRow, out, n, k, i0, i1, j0, j1);
        }
    }

    /** Many rows: w[j0..j1) becomes panels once; blocks of x rows are broadcast against every panel. */
    private static void packWeights(MemorySegment x, MemorySegment w, float[] biasRow, MemorySegment out, int n,
                                    int k, int i0, int i1, int j0, int j1) {
        int cols = j1 - j0;
        float[] panels = transpose(w, j0, cols, k);
        int rowBlock = Math.min(rowBlock(k), i1 - i0);
        float[] xs = new float[rowBlock * k];
        float[] tile = new float[ROWS * PANEL];
        for (int ib = i0; ib < i1; ib += rowBlock) {
            int rows = Math.min(i1, ib + rowBlock) - ib;
            MemorySegment.copy(x, F, 4L * ib * k, xs, 0, rows * k);
            for (int c0 = 0; c0 < cols; c0 += PANEL) {
                int width = Math.min(PANEL, cols - c0);
                for (int r = 0; r < rows; r += ROWS) {
                    int last = rows - 1; // rows past the block's end repeat its last row; their results are dropped
                    microKernel(xs, Math.min(r, last) * k, Math.min(r + 1, last) * k, Math.min(r + 2, last) * k,
                            Math.min(r + 3, last) * k, Math.min(r + 4, last) * k, Math.min(r + 5, last) * k,
                            panels, c0 * k, k, tile);
                    int height = Math.min(ROWS, rows - r);
                    for (int t = 0; t < height; t++) {
                        long o = (long) (ib + r + t) * n + j0 + c0;
                        if (width == PANEL) { // whole panel: two vector stores instead of 16 checked scalar ones
                            FloatVector v0 = FloatVector.fromArray(S, tile, t * PANEL);
                            FloatVector v1 = FloatVector.fromArray(S, tile, t * PANEL + LANES);
                            if (biasRow != null) { // the same single rounded add per element as the scalar path
                                v0 = v0.add(FloatVector.fromArray(S, biasRow, c0));
                                v1 = v1.add(FloatVector.fromArray(S, biasRow, c0 + LANES));
                            }
                            v0.intoMemorySegment(out, 4 * o, NATIVE);
                            v1.intoMemorySegment(out, 4 * (o + LANES), NATIVE);
                            continue;
                        }
                        for (int c = 0; c < width; c++) {
                            float v = tile[t * PANEL + c];
                            out.setAtIndex(F, o + c, biasRow == null ? v : v + biasRow[c0 + c]);
                        }
                    }
                }
            }
        }
    }

    /** Few rows: x[i0..i1) becomes panels; groups of ROWS w rows are broadcast against every panel. */
    private static void packInputs(MemorySegment x, MemorySegment w, float[] biasRow, MemorySegment out, int n,
                                   int k, int i0, int i1, int j0, int j1) {
        int rows = i1 - i0;
        float[] panels = transpose(x, i0, rows, k);
        float[] ws = new float[ROWS * k];
        float[] tile = new float[ROWS * PANEL];
        for (int j = j0; j < j1; j += ROWS) {
            int group = Math.min(ROWS, j1 - j);
            MemorySegment.copy(w, F, 4L * j * k, ws, 0, group * k);
            int last = group - 1; // w rows past j1 repeat the last one; their results are dropped
            for (int r0 = 0; r0 < rows; r0 += PANEL) {
                microKernel(ws, 0, Math.min(1, last) * k, Math.min(2, last) * k, Math.min(3, last) * k,
                        Math.min(4, last) * k, Math.min(5, last) * k, panels, r0 * k, k, tile);
                int height = Math.min(PANEL, rows - r0);
                for (int t = 0; t < group; t++) { // tile row t is output column j + t, lane c is output row r0 + c
                    float b = biasRow == null ? 0f : biasRow[j - j0 + t];
                    for (int c = 0; c < height; c++) {
                        float v = tile[t * PANEL + c];
                        out.setAtIndex(F, (long) (i0 + r0 + c) * n + j + t, biasRow == null ? v : v + b);
                    }
                }
            }
        }
    }

    /**
     * Packs lines [first, first + count) of a row-major [lines][k] matrix into panels: panel q holds lines
     * first + q*PANEL + c at {@code [q*k*PANEL + p*PANEL + c]}; slots past the last line stay zero.
     */
    private static float[] transpose(MemorySegment matrix, int first, int count, int k) {
        int panelCount = (count + PANEL - 1) / PANEL;
        float[] panels = new float[panelCount * k * PANEL];
        float[] line = new float[k];
        for (int l = 0; l < count; l++) {
            MemorySegment.copy(matrix, F, 4L * (first + l) * k, line, 0, k);
            int base = (l / PANEL) * k * PANEL + l % PANEL;
            for (int p = 0; p < k; p++) {
                panels[base + p * PANEL] = line[p];
            }
        }
        return panels;
    }

    /**
     * tile[t][c] = sum over p of src[rowT + p] * panels[base + p*PANEL + c], for the 6 broadcast rows t (offsets
     * r0..r5 into src) and the PANEL lines c, each as one fma chain in p order from +0.
     */
    private static void microKernel(float[] src, int r0, int r1, int r2, int r3, int r4, int r5,
                                    float[] panels, int base, int k, float[] tile) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int chunk = 0; chunk < k; chunk += CHUNK) {
            int end = Math.min(k, chunk + CHUNK);
            for (int p = chunk; p < end; p++) {
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
        }
        c00.intoArray(tile, 0); c01.intoArray(tile, LANES);
        c10.intoArray(tile, PANEL); c11.intoArray(tile, PANEL + LANES);
        c20.intoArray(tile, 2 * PANEL); c21.intoArray(tile, 2 * PANEL + LANES);
        c30.intoArray(tile, 3 * PANEL); c31.intoArray(tile, 3 * PANEL + LANES);
        c40.intoArray(tile, 4 * PANEL); c41.intoArray(tile, 4 * PANEL + LANES);
        c50.intoArray(tile, 5 * PANEL); c51.intoArray(tile, 5 * PANEL + LANES);
    }
}
