package io.flexstream.model;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptWeightsTest {

    @Test
    void randomIsDeterministicPerSeed() {
        OptConfig c = OptConfig.tiny(32, 2, 4, 100);
        try (Arena arena = Arena.ofShared()) {
            OptWeights a = OptWeights.random(c, 1, arena);
            OptWeights b = OptWeights.random(c, 1, arena);
            OptWeights other = OptWeights.random(c, 2, arena);
            for (Map.Entry<String, MemorySegment> e : a.tensors().entrySet()) {
                assertEquals(-1L, e.getValue().mismatch(b.tensors().get(e.getKey())), e.getKey());
                assertNotEquals(-1L, e.getValue().mismatch(other.tensors().get(e.getKey())), e.getKey());
            }
            assertTrue(a.tiedLmHead());
            assertEquals(c.parameterCount(), a.parameterCount());
            assertEquals(c.parameterCount() * 4, a.bytes());
            assertEquals(2, a.layers().size());
        }
    }

    @Test
    void optionalTensorsAreNullWhenTheConfigOmitsThem() {
        OptConfig c = new OptConfig(32, 1, 4, 64, 100, 64, 32, true, "relu", false, false, 2, 2, 1, "float32");
        try (Arena arena = Arena.ofShared()) {
            OptWeights w = OptWeights.random(c, 0, arena);
            OptLayerWeights l = w.layers().getFirst();
            assertNotNull(l.qWeight());
            assertNull(l.qBias());
            assertNull(l.fc2Bias());
            assertNull(l.attnLayerNormWeight());
            assertNull(l.finalLayerNormBias());
            assertNull(w.finalLayerNormWeight());
            assertNull(w.projectIn());
            assertEquals(c.parameterCount(), w.parameterCount());
        }
    }

    /** The documented scales: linear std 1/sqrt(fan_in), embeddings 6/sqrt(width), LayerNorm gamma near 1. */
    @Test
    void scalesFollowTheDocumentedInitialisation() {
        OptConfig c = OptConfig.tiny(64, 1, 4, 2000);
        try (Arena arena = Arena.ofShared()) {
            OptWeights w = OptWeights.random(c, 3, arena);
            OptLayerWeights l = w.layers().getFirst();
            assertEquals(1 / Math.sqrt(256), std(l.fc2Weight()), 0.005);
            assertEquals(1 / Math.sqrt(64), std(l.fc1Weight()), 0.005);
            assertEquals(6 / Math.sqrt(64), std(w.embedTokens()), 0.02);
            assertEquals(1.0, mean(w.finalLayerNormWeight()), 0.01);
            assertEquals(0.0, mean(w.finalLayerNormBias()), 0.01);
            assertTrue(std(w.finalLayerNormBias()) > 0.005, "beta carries some noise");
        }
    }

    /**
     * A unit-variance final hidden state against the random tied head gives a peaked distribution over OPT's full
     * vocabulary: far below the uniform entropy ln(50272) = 10.8 nats.
     */
    @Test
    void randomModelGivesPeakedNextTokenDistributions() {
        OptConfig c = OptConfig.tiny(64, 1, 4, 50272);
        try (Arena arena = Arena.ofShared()) {
            OptWeights w = OptWeights.random(c, 5, arena);
            SplittableRandom r = new SplittableRandom(9);
            double meanTop = 0;
            double meanEntropy = 0;
            int trials = 5;
            for (int t = 0; t < trials; t++) {
                double[] x = new double[64];
                for (int i = 0; i < 64; i++) {
                    x[i] = r.nextGaussian();
                }
                double[] logits = new double[c.vocabSize()];
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < logits.length; v++) {
                    double dot = 0;
                    for (int i = 0; i < 64; i++) {
                        dot += x[i] * w.lmHead().getAtIndex(ValueLayout.JAVA_FLOAT, (long) v * 64 + i);
                    }
                    logits[v] = dot;
                    max = Math.max(max, dot);
                }
                double sum = 0;
                for (double l : logits) {
                    sum += Math.exp(l - max);
                }
                double entropy = 0;
                for (double l : logits) {
                    double p = Math.exp(l - max) / sum;
                    if (p > 0) {
                        entropy -= p * Math.log(p);
                    }
                }
                meanTop += 1 / sum / trials;
                meanEntropy += entropy / trials;
            }
            assertTrue(meanEntropy < 4.0, "entropy " + meanEntropy);
            assertTrue(meanTop > 0.1, "top probability " + meanTop);
        }
    }

    /** Benchmarks build opt-125m-sized random models; that must take about a second, not a minute. */
    @Test
    void opt125mShapedRandomModelIsQuickToBuild() {
        OptConfig c = OptConfig.shape("opt-125m");
        try (Arena arena = Arena.ofShared()) {
            long start = System.nanoTime();
            OptWeights w = OptWeights.random(c, 0, arena);
            double seconds = (System.nanoTime() - start) / 1e9;
            assertEquals(125_239_296L, w.parameterCount());
            // Generous: about 1 s on an idle 2-core box, but the build machine is shared; this catches a 20x regression.
            assertTrue(seconds < 20, "took " + seconds + " s");
            System.out.printf("OptWeights.random(opt-125m): %.2f s%n", seconds);
        }
    }

    private static double mean(MemorySegment s) {
        long n = s.byteSize() / 4;
        double sum = 0;
        for (long i = 0; i < n; i++) {
            sum += s.getAtIndex(ValueLayout.JAVA_FLOAT, i);
        }
        return sum / n;
    }

    private static double std(MemorySegment s) {
        long n = s.byteSize() / 4;
        double m = mean(s);
        double sq = 0;
        for (long i = 0; i < n; i++) {
            double d = s.getAtIndex(ValueLayout.JAVA_FLOAT, i) - m;
            sq += d * d;
        }
        return Math.sqrt(sq / n);
    }
}
