package io.flexstream.engine;

import io.flexstream.model.OptConfig;
import io.flexstream.model.OptLayerWeights;
import io.flexstream.model.OptWeights;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A deliberately naive OPT forward pass for tests: one unpadded sequence, no KV cache (the whole sequence is
 * recomputed for every token), plain loops in double precision, written straight from the equations of OPT.md. The
 * engine's batched, padded, cached path must pick the same greedy tokens.
 */
final class ReferenceOpt {

    private final OptWeights w;
    private final OptConfig c;

    ReferenceOpt(OptWeights weights) {
        this.w = weights;
        this.c = weights.config();
    }

    /** Greedy continuation of {@code prompt} by {@code steps} tokens (EOS not treated specially). */
    int[] greedy(int[] prompt, int steps) {
        int[] seq = java.util.Arrays.copyOf(prompt, prompt.length + steps);
        for (int s = 0; s < steps; s++) {
            double[] logits = lastLogits(java.util.Arrays.copyOf(seq, prompt.length + s));
            int best = 0;
            for (int i = 1; i < logits.length; i++) {
                if (logits[i] > logits[best]) {
                    best = i;
                }
            }
            seq[prompt.length + s] = best;
        }
        return java.util.Arrays.copyOfRange(seq, prompt.length, seq.length);
    }

    /** Logits of the last position of an unpadded sequence. */
    double[] lastLogits(int[] tokens) {
        int n = tokens.length;
        int h = c.hiddenSize();
        int e = c.wordEmbedProjDim();
        double[][] x = new double[n][];
        for (int t = 0; t < n; t++) {
            double[] emb = row(w.embedTokens(), tokens[t], e);
            double[] hid = w.projectIn() == null ? emb : matvec(w.projectIn(), null, emb, h, e);
            double[] pos = row(w.embedPositions(), t + 2, h);
            for (int i = 0; i < h; i++) {
                hid[i] += pos[i];
            }
            x[t] = hid;
        }
        for (OptLayerWeights layer : w.layers()) {
            x = layer(layer, x);
        }
        double[] last = x[n - 1];
        if (c.doLayerNormBefore()) {
            last = layerNorm(last, w.finalLayerNormWeight(), w.finalLayerNormBias());
        }
        if (w.projectOut() != null) {
            last = matvec(w.projectOut(), null, last, e, h);
        }
        return matvec(w.lmHead(), null, last, c.vocabSize(), e);
    }

    private double[][] layer(OptLayerWeights l, double[][] x) {
        int n = x.length;
        int h = c.hiddenSize();
        int heads = c.numHeads();
        int hd = c.headDim();
        boolean pre = c.doLayerNormBefore();
        double[][] q = new double[n][];
        double[][] k = new double[n][];
        double[][] v = new double[n][];
        for (int t = 0; t < n; t++) {
            double[] in = pre ? layerNorm(x[t], l.attnLayerNormWeight(), l.attnLayerNormBias()) : x[t];
            q[t] = matvec(l.qWeight(), l.qBias(), in, h, h);
            for (int i = 0; i < h; i++) {
                q[t][i] /= Math.sqrt(hd);
            }
            k[t] = matvec(l.kWeight(), l.kBias(), in, h, h);
            v[t] = matvec(l.vWeight(), l.vBias(), in, h, h);
        }
        double[][] out = new double[n][];
        for (int t = 0; t < n; t++) {
            double[] ctx = new double[h];
            for (int head = 0; head < heads; head++) {
                int o = head * hd;
                double[] scores = new double[t + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j <= t; j++) {
                    double s = 0;
                    for (int d = 0; d < hd; d++) {
                        s += q[t][o + d] * k[j][o + d];
                    }
                    scores[j] = s;
                    max = Math.max(max, s);
                }
                double sum = 0;
                for (int j = 0; j <= t; j++) {
                    scores[j] = Math.exp(scores[j] - max);
                    sum += scores[j];
                }
                for (int j = 0; j <= t; j++) {
                    for (int d = 0; d < hd; d++) {
                        ctx[o + d] += scores[j] / sum * v[j][o + d];
                    }
                }
            }
            double[] a = matvec(l.outWeight(), l.outBias(), ctx, h, h);
            for (int i = 0; i < h; i++) {
                a[i] += x[t][i];
            }
            if (!pre) {
                a = layerNorm(a, l.attnLayerNormWeight(), l.attnLayerNormBias());
            }
            double[] in = pre ? layerNorm(a, l.finalLayerNormWeight(), l.finalLayerNormBias()) : a;
            double[] f = matvec(l.fc1Weight(), l.fc1Bias(), in, c.ffnDim(), h);
            for (int i = 0; i < f.length; i++) {
                f[i] = Math.max(0, f[i]);
            }
            double[] m = matvec(l.fc2Weight(), l.fc2Bias(), f, h, c.ffnDim());
            for (int i = 0; i < h; i++) {
                m[i] += a[i];
            }
            out[t] = pre ? m : layerNorm(m, l.finalLayerNormWeight(), l.finalLayerNormBias());
        }
        return out;
    }

    private static double[] layerNorm(double[] x, MemorySegment gamma, MemorySegment beta) {
        double mean = 0;
        for (double v : x) {
            mean += v;
        }
        mean /= x.length;
        double var = 0;
        for (double v : x) {
            var += (v - mean) * (v - mean);
        }
        var /= x.length;
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double g = gamma == null ? 1 : at(gamma, i);
            double b = beta == null ? 0 : at(beta, i);
            out[i] = (x[i] - mean) / Math.sqrt(var + 1e-5) * g + b;
        }
        return out;
    }

    private static double[] matvec(MemorySegment weight, MemorySegment bias, double[] x, int rows, int cols) {
        double[] out = new double[rows];
        for (int r = 0; r < rows; r++) {
            double s = bias == null ? 0 : at(bias, r);
            long base = (long) r * cols;
            for (int i = 0; i < cols; i++) {
                s += at(weight, base + i) * x[i];
            }
            out[r] = s;
        }
        return out;
    }

    private static double[] row(MemorySegment table, int row, int width) {
        double[] out = new double[width];
        for (int i = 0; i < width; i++) {
            out[i] = at(table, (long) row * width + i);
        }
        return out;
    }

    private static double at(MemorySegment segment, long index) {
        return segment.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, index);
    }
}
