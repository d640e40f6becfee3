package io.flexstream.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The register- and cache-blocked body of {@link CpuKernels#linear}: computes a rectangle of {@code out = x w^T + b}.
 *
 * <p>Formulation: w is [n][k], so each output is a dot product of two contiguous rows along k. A 4x4 micro-tile keeps
 * 16 vector accumulators (4 rows of x times 4 rows of w) and per step of LANES floats loads 4 x vectors and 4 w
 * vectors for 16 FMAs. No reordering of w into panels is needed, so the {@link Kernels} interface stays as it is.
 *
 * <p>Cache blocking and copies: a block of x rows sized for L2 ({@code flexstream.kernel.l2Bytes}, default 256 KiB)
 * is copied into a heap array, and so is each group of 4 w rows before it is swept against that whole block (the
 * group then stays in L1). The copies exist because C2 eliminates the bounds checks of an int-indexed array loop but
 * not of 8 segment loads per step: the same micro-kernel ran ~35 GFLOP/s on arrays and ~23 on segments (one thread,
 * shared machine). They cost one extra pass over w per x block, a few percent. k itself is not split: the model's k
 * (768, 3072) keeps a 4-row w group within L1/L2, and splitting k would change the reduction order.
 *
 * <p>Batch invariance: every output element, whichever tile shape computes it (4x4, 1x4 or 1x1 at the edges), goes
 * through the same operations: lane l of its accumulator takes fma(x[p], w[p], acc) for p = l, l+LANES, ... below
 * kMain = k - k % LANES, then the {@link LaneSum} fold, then a scalar fma chain over the tail p in [kMain, k), then
 * + bias. Nothing depends on m, on the row, on the tile position or on the thread.
 */
final class VectorLinear {

    private static final VectorSpecies<Float> S = LaneSum.SPECIES;
    private static final int LANES = LaneSum.LANES;
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final long L2_BYTES = Long.getLong("flexstream.kernel.l2Bytes", 256 * 1024);

    private VectorLinear() {
    }

    /** Rows of x per L2 block for this k: a multiple of 4, at least 4. */
    static int rowBlock(int k) {
        long rows = L2_BYTES / (4L * Math.max(k, 1));
        return (int) Math.max(4, Math.min(1 << 16, rows & ~3L));
    }

    /** Computes out[i][j] for i in [i0, i1) and j in [j0, j1). */
    static void rectangle(MemorySegment x, MemorySegment w, MemorySegment bias, MemorySegment out, int n, int k,
                          int i0, int i1, int j0, int j1) {
        if (i0 >= i1 || j0 >= j1) {
            return;
        }
        int rowBlock = Math.min(rowBlock(k), i1 - i0);
        float[] xs = new float[rowBlock * k];
        float[] ws = new float[4 * k];
        float[] lanes = new float[16 * LANES]; // a tile's accumulators, parked for the scalar epilogue
        for (int ib = i0; ib < i1; ib += rowBlock) {
            int rows = Math.min(i1, ib + rowBlock) - ib;
            MemorySegment.copy(x, F, 4L * ib * k, xs, 0, rows * k);
            int j = j0;
            for (; j + 4 <= j1; j += 4) {
                MemorySegment.copy(w, F, 4L * j * k, ws, 0, 4 * k);
                int r = 0;
                for (; r + 4 <= rows; r += 4) {
                    tile4x4(xs, r * k, ws, k, lanes);
                    for (int t = 0; t < 4; t++) {
                        finish4(lanes, 4 * t, xs, (r + t) * k, ws, bias, out, n, k, ib + r + t, j);
                    }
                }
                for (; r < rows; r++) {
                    tile1x4(xs, r * k, ws, k, lanes);
                    finish4(lanes, 0, xs, r * k, ws, bias, out, n, k, ib + r, j);
                }
            }
            for (; j < j1; j++) {
                MemorySegment.copy(w, F, 4L * j * k, ws, 0, k);
                for (int r = 0; r < rows; r++) {
                    tile1x1(xs, r * k, ws, k, lanes);
                    out.setAtIndex(F, (long) (ib + r) * n + j, finish(lanes, 0, xs, r * k, ws, 0, bias, k, j));
                }
            }
        }
    }

    /** x rows at x0 (4 of them, k apart) times the 4 w rows in ws; accumulator (r, c) goes to lanes[(4r+c)*LANES]. */
    private static void tile4x4(float[] xs, int x0, float[] ws, int k, float[] lanes) {
        int x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
        int w1 = k, w2 = 2 * k, w3 = 3 * k;
        FloatVector a00 = FloatVector.zero(S), a01 = a00, a02 = a00, a03 = a00;
        FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        int main = k - k % LANES;
        for (int p = 0; p < main; p += LANES) {
            FloatVector v0 = FloatVector.fromArray(S, xs, x0 + p), v1 = FloatVector.fromArray(S, xs, x1 + p);
            FloatVector v2 = FloatVector.fromArray(S, xs, x2 + p), v3 = FloatVector.fromArray(S, xs, x3 + p);
            FloatVector u = FloatVector.fromArray(S, ws, p);
            a00 = v0.fma(u, a00); a10 = v1.fma(u, a10); a20 = v2.fma(u, a20); a30 = v3.fma(u, a30);
            u = FloatVector.fromArray(S, ws, w1 + p);
            a01 = v0.fma(u, a01); a11 = v1.fma(u, a11); a21 = v2.fma(u, a21); a31 = v3.fma(u, a31);
            u = FloatVector.fromArray(S, ws, w2 + p);
            a02 = v0.fma(u, a02); a12 = v1.fma(u, a12); a22 = v2.fma(u, a22); a32 = v3.fma(u, a32);
            u = FloatVector.fromArray(S, ws, w3 + p);
            a03 = v0.fma(u, a03); a13 = v1.fma(u, a13); a23 = v2.fma(u, a23); a33 = v3.fma(u, a33);
        }
        a00.intoArray(lanes, 0); a01.intoArray(lanes, LANES); a02.intoArray(lanes, 2 * LANES);
        a03.intoArray(lanes, 3 * LANES); a10.intoArray(lanes, 4 * LANES); a11.intoArray(lanes, 5 * LANES);
        a12.intoArray(lanes, 6 * LANES); a13.intoArray(lanes, 7 * LANES); a20.intoArray(lanes, 8 * LANES);
        a21.intoArray(lanes, 9 * LANES); a22.intoArray(lanes, 10 * LANES); a23.intoArray(lanes, 11 * LANES);
        a30.intoArray(lanes, 12 * LANES); a31.intoArray(lanes, 13 * LANES); a32.intoArray(lanes, 14 * LANES);
        a33.intoArray(lanes, 15 * LANES);
    }

    /** One x row against the 4 w rows in ws (the ragged bottom edge); accumulator c goes to lanes[c*LANES]. */
    private static void tile1x4(float[] xs, int x0, float[] ws, int k, float[] lanes) {
        int w1 = k, w2 = 2 * k, w3 = 3 * k;
        FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
        int main = k - k % LANES;
        for (int p = 0; p < main; p += LANES) {
            FloatVector v = FloatVector.fromArray(S, xs, x0 + p);
            a0 = v.fma(FloatVector.fromArray(S, ws, p), a0);
            a1 = v.fma(FloatVector.fromArray(S, ws, w1 + p), a1);
            a2 = v.fma(FloatVector.fromArray(S, ws, w2 + p), a2);
            a3 = v.fma(FloatVector.fromArray(S, ws, w3 + p), a3);
        }
        a0.intoArray(lanes, 0); a1.intoArray(lanes, LANES); a2.intoArray(lanes, 2 * LANES);
        a3.intoArray(lanes, 3 * LANES);
    }

    /** One x row against the first w row in ws (the ragged right edge); the accumulator goes to lanes[0]. */
    private static void tile1x1(float[] xs, int x0, float[] ws, int k, float[] lanes) {
        FloatVector a = FloatVector.zero(S);
        int main = k - k % LANES;
        for (int p = 0; p < main; p += LANES) {
            a = FloatVector.fromArray(S, xs, x0 + p).fma(FloatVector.fromArray(S, ws, p), a);
        }
        a.intoArray(lanes, 0);
    }

    /** Writes out[i][j..j+3] from the 4 accumulators starting at accumulator {@code first}; w rows are ws rows 0..3. */
    private static void finish4(float[] lanes, int first, float[] xs, int x0, float[] ws, MemorySegment bias,
                                MemorySegment out, int n, int k, int i, int j) {
        long o = (long) i * n + j;
        for (int c = 0; c < 4; c++) {
            out.setAtIndex(F, o + c, finish(lanes, (first + c) * LANES, xs, x0, ws, c * k, bias, k, j + c));
        }
    }

    /** Lane fold, then the scalar tail in index order, then the bias: the fixed epilogue of every element. */
    private static float finish(float[] lanes, int offset, float[] xs, int x0, float[] ws, int w0,
                                MemorySegment bias, int k, int j) {
        float s = LaneSum.fold(lanes, offset);
        for (int p = k - k % LANES; p < k; p++) {
            s = Math.fma(xs[x0 + p], ws[w0 + p], s);
        }
        return bias == null ? s : s + bias.getAtIndex(F, j);
    }
}
