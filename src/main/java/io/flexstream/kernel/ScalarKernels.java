package io.flexstream.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The reference backend: plain loops on one thread, written to be obviously right rather than fast. It is the oracle
 * that {@link CpuKernels} is tested against.
 *
 * <p>Every sum is a float accumulated in index order (p = 0, 1, ..., k-1), with separate multiply and add (no FMA),
 * then the bias added last. Float rather than double on purpose: the fast backend also accumulates in float, so the
 * difference between the two is rounding-order noise of size ~k * ulp, which the differential tests bound. Being
 * single-threaded with a fixed order, it is trivially batch invariant.
 */
public final class ScalarKernels implements Kernels {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    @Override
    public String name() {
        return "scalar(1 thread)";
    }

    @Override
    public void linear(MemorySegment x, MemorySegment w, MemorySegment bias, MemorySegment out, int m, int n, int k) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                float sum = 0f;
                for (int p = 0; p < k; p++) {
                    sum += get(x, (long) i * k + p) * get(w, (long) j * k + p);
                }
                if (bias != null) {
                    sum += get(bias, j);
                }
                set(out, (long) i * n + j, sum);
            }
        }
    }

    @Override
    public void layerNorm(MemorySegment x, MemorySegment gamma, MemorySegment beta, MemorySegment out, int rows,
                          int dim, float eps) {
        for (int r = 0; r < rows; r++) {
            long base = (long) r * dim;
            float sum = 0f;
            for (int c = 0; c < dim; c++) {
                sum += get(x, base + c);
            }
            float mean = sum / dim;
            float squares = 0f;
            for (int c = 0; c < dim; c++) {
                float d = get(x, base + c) - mean;
                squares += d * d;
            }
            float rstd = (float) (1.0 / Math.sqrt(squares / dim + eps));
            for (int c = 0; c < dim; c++) {
                float y = (get(x, base + c) - mean) * rstd;
                if (gamma != null) {
                    y *= get(gamma, c);
                }
                if (beta != null) {
                    y += get(beta, c);
                }
                set(out, base + c, y);
            }
        }
    }

    @Override
    public void relu(MemorySegment x, long n) {
        for (long i = 0; i < n; i++) {
            set(x, i, Math.max(get(x, i), 0f));
        }
    }

    @Override
    public void scale(MemorySegment x, long n, float factor) {
        for (long i = 0; i < n; i++) {
            set(x, i, get(x, i) * factor);
        }
    }

    @Override
    public void add(MemorySegment acc, MemorySegment x, long n) {
        for (long i = 0; i < n; i++) {
            set(acc, i, get(acc, i) + get(x, i));
        }
    }

    @Override
    public void attention(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment keyValid,
                          MemorySegment out, int batch, int qLen, int kvLen, int capacity, int heads, int headDim) {
        int hidden = heads * headDim;
        float[] scores = new float[kvLen];
        boolean[] visible = new boolean[kvLen];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                for (int t = 0; t < qLen; t++) {
                    long qBase = ((long) b * qLen + t) * hidden + (long) h * headDim;
                    int position = kvLen - qLen + t; // this query's own cache slot: it sees keys 0..position
                    float max = Float.NEGATIVE_INFINITY;
                    boolean any = false;
                    for (int j = 0; j <= position; j++) {
                        visible[j] = get(keyValid, (long) b * capacity + j) != 0f;
                        if (!visible[j]) {
                            continue;
                        }
                        long kBase = ((long) b * capacity + j) * hidden + (long) h * headDim;
                        float dot = 0f;
                        for (int d = 0; d < headDim; d++) {
                            dot += get(q, qBase + d) * get(kCache, kBase + d);
                        }
                        scores[j] = dot;
                        max = Math.max(max, dot);
                        any = true;
                    }
                    float denominator = 0f;
                    for (int j = 0; j <= position; j++) {
                        if (visible[j]) {
                            scores[j] = (float) Math.exp(scores[j] - max);
                            denominator += scores[j];
                        }
                    }
                    for (int d = 0; d < headDim; d++) {
                        float acc = 0f;
                        if (any) {
                            for (int j = 0; j <= position; j++) {
                                if (visible[j]) {
                                    long vBase = ((long) b * capacity + j) * hidden + (long) h * headDim;
                                    acc += scores[j] * get(vCache, vBase + d);
                                }
                            }
                            acc /= denominator;
                        }
                        set(out, qBase + d, acc);
                    }
                }
            }
        }
    }

    private static float get(MemorySegment s, long index) {
        return s.getAtIndex(F, index);
    }

    private static void set(MemorySegment s, long index, float value) {
        s.setAtIndex(F, index, value);
    }
}
