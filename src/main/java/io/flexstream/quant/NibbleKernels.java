package io.flexstream.quant;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Register blocks of the fused 4-bit dot products of {@link QuantizedLinear}: {@code y[i][j] = sum_p x[i][p] W'[j][p]}
 * for a few input rows i and weight rows j at once, over inputs copied to a heap array and zero-padded to whole groups
 * (the {@code kp} parameter of each block is that copy's row stride in floats, at least the padded length). The copy
 * is small (m rows against n weight rows) and lets C2 drop the bounds checks that segment loads keep; the packed
 * weights stay in their segment, one int-vector load per 8 x L codes.
 *
 * <p>Every block computes each element with the same operations in the same order, so a result never depends on the
 * block it was computed in (batch invariance): {@code acc = 0}; per group, {@code step = 1 / scale} and {@code min}
 * broadcast; per word block h and nibble shift s ascending, {@code w = q.fma(step, min)} (the dequantized weight,
 * FlexGen's {@code q / scale + min} with the division done once per group: equal up to fp32 rounding) and
 * {@code acc = x.fma(w, acc)}; finally the lanes are summed in index order. Keep the blocks in step when editing one.
 *
 * <p>Cost per 8 codes (AVX2): shift, mask, int-to-float, one FMA to dequantize, then a load and an FMA per input row.
 * The 8x1 block (m >= 8) spends 20 vector ops per 64 multiply-adds, close to an fp32 4x1 block's 18, with 13 of the
 * 16 AVX2 registers live (a 4x2 block needs 18 and spills); the 1x4 block (decode) reads 0.14x the bytes of fp32
 * weights, and bytes are what bound an fp32 matrix-vector product.
 */
final class NibbleKernels {

    /**
     * The preferred width capped at 256 bits: a group of 64 is 8 words, so wider vectors would straddle two groups
     * (and two scales). On AVX-512 machines this runs at 256 bits; on 128-bit machines at 4 lanes.
     */
    static final VectorShape SHAPE = VectorShape.preferredShape().vectorBitSize() > 256 ? VectorShape.S_256_BIT
            : VectorShape.preferredShape();
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.withShape(SHAPE);
    static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED.withShape(SHAPE);
    static final int L = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private NibbleKernels() {
    }

    /** The codes at bit offset {@code shift} (0, 4, ..., 28) of each word lane, as floats 0..15. */
    static FloatVector codes(IntVector words, int shift) {
        return (FloatVector) words.lanewise(VectorOperators.LSHR, shift).and(0xF).convert(VectorOperators.I2F, 0);
    }

    static FloatVector step(MemorySegment meta, long slot) {
        return stepAt(meta, slot * 4);
    }

    static FloatVector min(MemorySegment meta, long slot) {
        return minAt(meta, slot * 4);
    }

    /**
     * {@code 1 / scale} of the group whose 4 bytes of metadata (fp16 scale, fp16 min) start at byte {@code at}: the
     * dequantizing FMA's factor, shared by the matrix blocks and the compressed-cache attention.
     */
    static FloatVector stepAt(MemorySegment meta, long at) {
        return FloatVector.broadcast(F, 1f / Float.float16ToFloat(meta.get(QuantizedMatrix.FP16, at)));
    }

    /** The min of the group whose metadata starts at byte {@code at}: the dequantizing FMA's addend. */
    static FloatVector minAt(MemorySegment meta, long at) {
        return FloatVector.broadcast(F, Float.float16ToFloat(meta.get(QuantizedMatrix.FP16, at + 2)));
    }

    /**
     * Accumulator q's lanes summed in index order. The blocks store their accumulators to an array rather than
     * calling reduceLanes, whose order may differ between interpreted and compiled code, and rather than passing
     * vectors to a helper, which boxes them when the JIT does not inline it.
     */
    static float sum(float[] lanes, int q) {
        float s = 0f;
        for (int l = q * L; l < q * L + L; l++) {
            s += lanes[l];
        }
        return s;
    }

    /** y[i][j] alone; lanes of the accumulator into {@code lanes[0, L)}. */
    static void dot1x1(float[] x, QuantizedMatrix w, int i, int j, int kp, float[] lanes) {
        int words = w.groupSize() / 8;
        int gpr = w.groupsPerRow();
        MemorySegment packed = w.packed();
        MemorySegment meta = w.metadata();
        int stride = words;
        FloatVector a = FloatVector.zero(F);
        for (int gr = 0; gr < gpr; gr++) {
            long slot = (long) j * gpr + gr;
            FloatVector step = step(meta, slot);
            FloatVector mn = min(meta, slot);
            for (int h = 0; h < words; h += L) {
                IntVector v = IntVector.fromMemorySegment(I, packed, (slot * words + h) * 4, LE);
                int xo = i * kp + gr * words * 8 + h;
                for (int sh = 0; sh < 32; sh += 4, xo += stride) {
                    a = FloatVector.fromArray(F, x, xo).fma(codes(v, sh).fma(step, mn), a);
                }
            }
        }
        a.intoArray(lanes, 0);
    }

    /** y[i][j..j+3] (the decode case): one input vector meets four weight rows; accumulator q's lanes into
     * {@code lanes[q * L, q * L + L)}. */
    static void dot1x4(float[] x, QuantizedMatrix w, int i, int j, int kp, float[] lanes) {
        int words = w.groupSize() / 8;
        int gpr = w.groupsPerRow();
        MemorySegment packed = w.packed();
        MemorySegment meta = w.metadata();
        int stride = words;
        long rowBytes = (long) gpr * words * 4;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        for (int gr = 0; gr < gpr; gr++) {
            long slot = (long) j * gpr + gr;
            FloatVector s0 = step(meta, slot);
            FloatVector s1 = step(meta, slot + gpr);
            FloatVector s2 = step(meta, slot + 2L * gpr);
            FloatVector s3 = step(meta, slot + 3L * gpr);
            FloatVector n0 = min(meta, slot);
            FloatVector n1 = min(meta, slot + gpr);
            FloatVector n2 = min(meta, slot + 2L * gpr);
            FloatVector n3 = min(meta, slot + 3L * gpr);
            for (int h = 0; h < words; h += L) {
                long po = (slot * words + h) * 4;
                IntVector v0 = IntVector.fromMemorySegment(I, packed, po, LE);
                IntVector v1 = IntVector.fromMemorySegment(I, packed, po + rowBytes, LE);
                IntVector v2 = IntVector.fromMemorySegment(I, packed, po + 2 * rowBytes, LE);
                IntVector v3 = IntVector.fromMemorySegment(I, packed, po + 3 * rowBytes, LE);
                int xo = i * kp + gr * words * 8 + h;
                for (int sh = 0; sh < 32; sh += 4, xo += stride) {
                    FloatVector xv = FloatVector.fromArray(F, x, xo);
                    a0 = xv.fma(codes(v0, sh).fma(s0, n0), a0);
                    a1 = xv.fma(codes(v1, sh).fma(s1, n1), a1);
                    a2 = xv.fma(codes(v2, sh).fma(s2, n2), a2);
                    a3 = xv.fma(codes(v3, sh).fma(s3, n3), a3);
                }
            }
        }
        a0.intoArray(lanes, 0);
        a1.intoArray(lanes, 1 * L);
        a2.intoArray(lanes, 2 * L);
        a3.intoArray(lanes, 3 * L);
    }

    /** y[i..i+3][j]: four input rows share each dequantized weight vector; accumulator q's lanes into
     * {@code lanes[q * L, q * L + L)}. */
    static void dot4x1(float[] x, QuantizedMatrix w, int i, int j, int kp, float[] lanes) {
        int words = w.groupSize() / 8;
        int gpr = w.groupsPerRow();
        MemorySegment packed = w.packed();
        MemorySegment meta = w.metadata();
        int stride = words;
        int xRow = kp;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        for (int gr = 0; gr < gpr; gr++) {
            long slot = (long) j * gpr + gr;
            FloatVector step = step(meta, slot);
            FloatVector mn = min(meta, slot);
            for (int h = 0; h < words; h += L) {
                IntVector v = IntVector.fromMemorySegment(I, packed, (slot * words + h) * 4, LE);
                int xo = i * kp + gr * words * 8 + h;
                for (int sh = 0; sh < 32; sh += 4, xo += stride) {
                    FloatVector wv = codes(v, sh).fma(step, mn);
                    a0 = FloatVector.fromArray(F, x, xo).fma(wv, a0);
                    a1 = FloatVector.fromArray(F, x, xo + xRow).fma(wv, a1);
                    a2 = FloatVector.fromArray(F, x, xo + 2 * xRow).fma(wv, a2);
                    a3 = FloatVector.fromArray(F, x, xo + 3 * xRow).fma(wv, a3);
                }
            }
        }
        a0.intoArray(lanes, 0);
        a1.intoArray(lanes, 1 * L);
        a2.intoArray(lanes, 2 * L);
        a3.intoArray(lanes, 3 * L);
    }

    /** y[i..i+7][j] (prefill): eight input rows share each dequantized weight vector; 13 vector registers live. */
    static void dot8x1(float[] x, QuantizedMatrix w, int i, int j, int kp, float[] lanes) {
        int words = w.groupSize() / 8;
        int gpr = w.groupsPerRow();
        MemorySegment packed = w.packed();
        MemorySegment meta = w.metadata();
        int stride = words;
        int xRow = kp;
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        FloatVector a4 = a0;
        FloatVector a5 = a0;
        FloatVector a6 = a0;
        FloatVector a7 = a0;
        for (int gr = 0; gr < gpr; gr++) {
            long slot = (long) j * gpr + gr;
            FloatVector step = step(meta, slot);
            FloatVector mn = min(meta, slot);
            for (int h = 0; h < words; h += L) {
                IntVector v = IntVector.fromMemorySegment(I, packed, (slot * words + h) * 4, LE);
                int xo = i * kp + gr * words * 8 + h;
                for (int sh = 0; sh < 32; sh += 4, xo += stride) {
                    FloatVector wv = codes(v, sh).fma(step, mn);
                    a0 = FloatVector.fromArray(F, x, xo).fma(wv, a0);
                    a1 = FloatVector.fromArray(F, x, xo + xRow).fma(wv, a1);
                    a2 = FloatVector.fromArray(F, x, xo + 2 * xRow).fma(wv, a2);
                    a3 = FloatVector.fromArray(F, x, xo + 3 * xRow).fma(wv, a3);
                    a4 = FloatVector.fromArray(F, x, xo + 4 * xRow).fma(wv, a4);
                    a5 = FloatVector.fromArray(F, x, xo + 5 * xRow).fma(wv, a5);
                    a6 = FloatVector.fromArray(F, x, xo + 6 * xRow).fma(wv, a6);
                    a7 = FloatVector.fromArray(F, x, xo + 7 * xRow).fma(wv, a7);
                }
            }
        }
        a0.intoArray(lanes, 0);
        a1.intoArray(lanes, L);
        a2.intoArray(lanes, 2 * L);
        a3.intoArray(lanes, 3 * L);
        a4.intoArray(lanes, 4 * L);
        a5.intoArray(lanes, 5 * L);
        a6.intoArray(lanes, 6 * L);
        a7.intoArray(lanes, 7 * L);
    }
}
