package io.flexstream.engine;

/** Comparing next-token distributions given as logits, for the accuracy tests of compression. */
final class Distributions {

    private Distributions() {
    }

    /** KL(softmax(p) || softmax(q)) in nats, in double precision. */
    static double kl(float[] p, float[] q) {
        double[] pp = softmax(p);
        double[] qq = softmax(q);
        double kl = 0;
        for (int v = 0; v < pp.length; v++) {
            if (pp[v] > 0) {
                kl += pp[v] * (Math.log(pp[v]) - Math.log(Math.max(qq[v], 1e-30)));
            }
        }
        return kl;
    }

    static double[] softmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        double[] p = new double[logits.length];
        for (int i = 0; i < p.length; i++) {
            p[i] = Math.exp(logits[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }
}
