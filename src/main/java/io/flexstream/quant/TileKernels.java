package io.flexstream.quant;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The prefill path of {@link QuantizedLinear} (many input rows): four weight rows at a time are dequantized into a
 * small per-thread fp32 scratch (4 x kp floats, 32 KiB for k = 2048: never a copy of the layer), then swept against a
 * cache-sized block of input rows with a 4x4 register tile of FMAs, so the unpacking cost is paid once per block of
 * input rows instead of once per row.
 *
 * <p>Bit-identical to {@link NibbleKernels}: the scratch holds exactly the vectors {@code codes(v, s).fma(step, min)}
 * the register path computes, stored in the order it generates them, and each accumulator lane takes the same FMAs in
 * the same order. That order is plain column order only when a group's words fill exactly one vector
 * ({@code groupSize == 8 * L}, 64 on AVX2), so only that case takes this path; batch invariance then holds across
 * both paths, whatever m.
 */
final class TileKernels {

    private static final int L = NibbleKernels.L;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private TileKernels() {
    }

    /** Whether the tile path reproduces the register path's order for this group size. */
    static boolean supports(int groupSize) {
        return groupSize == 8 * L;
    }

    /**
     * Weight rows j..j+3 dequantized into {@code ws[r * stride, r * stride + kp)}, in column order (see class comment).
     */
    static void dequantize4(QuantizedMatrix w, int j, int stride, float[] ws) {
        int gpr = w.groupsPerRow();
        MemorySegment packed = w.packed();
        MemorySegment meta = w.metadata();
        for (int r = 0; r < 4; r++) {
            for (int gr = 0; gr < gpr; gr++) {
                long slot = (long) (j + r) * gpr + gr;
                FloatVector step = NibbleKernels.step(meta, slot);
                FloatVector mn = NibbleKernels.min(meta, slot);
                IntVector v = IntVector.fromMemorySegment(NibbleKernels.I, packed, slot * L * 4, LE);
                int t = r * stride + gr * 8 * L;
                for (int sh = 0; sh < 32; sh += 4, t += L) {
                    NibbleKernels.codes(v, sh).fma(step, mn).intoArray(ws, t);
                }
            }
        }
    }

    /**
     * y[i..i+3][j..j+3] from the scratch (x and ws rows {@code stride} floats apart, kp used); accumulator
     * (i + a, j + b) into lanes[(4a + b) * L ...].
     */
    static void tile4x4(float[] x, int i, float[] ws, int kp, int stride, float[] lanes) {
        FloatVector z = FloatVector.zero(NibbleKernels.F);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z;
        FloatVector a10 = z, a11 = z, a12 = z, a13 = z;
        FloatVector a20 = z, a21 = z, a22 = z, a23 = z;
        FloatVector a30 = z, a31 = z, a32 = z, a33 = z;
        int x0 = i * stride;
        for (int t = 0; t < kp; t += L) {
            FloatVector w0 = FloatVector.fromArray(NibbleKernels.F, ws, t);
            FloatVector w1 = FloatVector.fromArray(NibbleKernels.F, ws, stride + t);
            FloatVector w2 = FloatVector.fromArray(NibbleKernels.F, ws, 2 * stride + t);
            FloatVector w3 = FloatVector.fromArray(NibbleKernels.F, ws, 3 * stride + t);
            FloatVector xv = FloatVector.fromArray(NibbleKernels.F, x, x0 + t);
            a00 = xv.fma(w0, a00);
            a01 = xv.fma(w1, a01);
            a02 = xv.fma(w2, a02);
            a03 = xv.fma(w3, a03);
            xv = FloatVector.fromArray(NibbleKernels.F, x, x0 + stride + t);
            a10 = xv.fma(w0, a10);
            a11 = xv.fma(w1, a11);
            a12 = xv.fma(w2, a12);
            a13 = xv.fma(w3, a13);
            xv = FloatVector.fromArray(NibbleKernels.F, x, x0 + 2 * stride + t);
            a20 = xv.fma(w0, a20);
            a21 = xv.fma(w1, a21);
            a22 = xv.fma(w2, a22);
            a23 = xv.fma(w3, a23);
            xv = FloatVector.fromArray(NibbleKernels.F, x, x0 + 3 * stride + t);
            a30 = xv.fma(w0, a30);
            a31 = xv.fma(w1, a31);
            a32 = xv.fma(w2, a32);
            a33 = xv.fma(w3, a33);
        }
        a00.intoArray(lanes, 0);
        a01.intoArray(lanes, L);
        a02.intoArray(lanes, 2 * L);
        a03.intoArray(lanes, 3 * L);
        a10.intoArray(lanes, 4 * L);
        a11.intoArray(lanes, 5 * L);
        a12.intoArray(lanes, 6 * L);
        a13.intoArray(lanes, 7 * L);
        a20.intoArray(lanes, 8 * L);
        a21.intoArray(lanes, 9 * L);
        a22.intoArray(lanes, 10 * L);
        a23.intoArray(lanes, 11 * L);
        a30.intoArray(lanes, 12 * L);
        a31.intoArray(lanes, 13 * L);
        a32.intoArray(lanes, 14 * L);
        a33.intoArray(lanes, 15 * L);
    }

    /** y[i][j..j+3] from the scratch; accumulator (i, j + b) into lanes[b * L ...]. */
    static void tile1x4(float[] x, int i, float[] ws, int kp, int stride, float[] lanes) {
        FloatVector a0 = FloatVector.zero(NibbleKernels.F);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        int x0 = i * stride;
        for (int t = 0; t < kp; t += L) {
            FloatVector xv = FloatVector.fromArray(NibbleKernels.F, x, x0 + t);
            a0 = xv.fma(FloatVector.fromArray(NibbleKernels.F, ws, t), a0);
            a1 = xv.fma(FloatVector.fromArray(NibbleKernels.F, ws, stride + t), a1);
            a2 = xv.fma(FloatVector.fromArray(NibbleKernels.F, ws, 2 * stride + t), a2);
            a3 = xv.fma(FloatVector.fromArray(NibbleKernels.F, ws, 3 * stride + t), a3);
        }
        a0.intoArray(lanes, 0);
        a1.intoArray(lanes, L);
        a2.intoArray(lanes, 2 * L);
        a3.intoArray(lanes, 3 * L);
    }
}
