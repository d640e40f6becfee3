package io.flexstream.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.stream.LongStream;

/**
 * Deterministic random weights for benchmarks and tiny test models, identical whether produced in memory
 * ({@link OptWeights#random}) or written to disk ({@link TinyModel}).
 *
 * <p>Generator: element i of a tensor is a pure function of (seed, tensor name, i): a SplitMix64 hash of a per-tensor
 * key plus i. That makes filling embarrassingly parallel and independent of chunking and thread count. Each hash
 * yields four 16-bit uniforms whose sum (Irwin-Hall, n=4) is rescaled to mean 0 and variance 1: close enough to a
 * normal for weights, bounded by ±3.46, and far cheaper than Box-Muller (~1 ns per element).
 *
 * <p>Scales, chosen so that a random model gives peaked next-token distributions rather than near-uniform logits:
 * <ul>
 *   <li>Linear weights: std 1/sqrt(fan_in), which keeps activations at unit variance through every projection.</li>
 *   <li>Token embeddings (and an untied lm_head): std {@link #LOGIT_STD}/sqrt(wepd). The final hidden state is
 *   LayerNorm'd (or projected from a LayerNorm'd state) to unit variance per element, so a logit, the dot product of
 *   wepd such elements with an embedding row, has std about {@link #LOGIT_STD}. With std 6 over 50k tokens the top
 *   logit stands several nats above the rest: a peaked distribution, as a trained model's usually is.</li>
 *   <li>Position embeddings: std {@link #LOGIT_STD}/sqrt(h), the same order as the token part, so both matter.</li>
 *   <li>LayerNorm gamma 1 + 0.02·z, beta and linear biases 0.02·z: near the identity, but not exactly, so a kernel
 *   that ignores gamma, beta or a bias still shows up in tests.</li>
 * </ul>
 */
final class RandomInit {

    /** Target standard deviation of a logit, in nats. */
    static final float LOGIT_STD = 6f;
    static final float SMALL_STD = 0.02f;

    private static final long CHUNK = 1L << 18;
    private static final float IRWIN_HALL_SCALE = (float) (Math.sqrt(3.0) / 65536.0);

    private RandomInit() {
    }

    /** Fills {@code out} (native-order fp32, at least e.elementCount() floats) with tensor e's random values. */
    static void fill(OptConfig config, OptTensorLayout.Entry e, long seed, MemorySegment out) {
        float mean = e.role() == OptTensorLayout.Role.NORM_WEIGHT ? 1f : 0f;
        float std = std(config, e);
        long key = mix(seed ^ mix(e.name().hashCode() * 0x9E3779B97F4A7C15L));
        long count = e.elementCount();
        long chunks = (count + CHUNK - 1) / CHUNK;
        LongStream range = LongStream.range(0, chunks);
        (chunks > 1 ? range.parallel() : range).forEach(c -> {
            long end = Math.min(count, (c + 1) * CHUNK);
            for (long i = c * CHUNK; i < end; i++) {
                out.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, mean + std * standard(key, i));
            }
        });
    }

    static float std(OptConfig config, OptTensorLayout.Entry e) {
        return switch (e.role()) {
            case LINEAR_WEIGHT -> (float) (1.0 / Math.sqrt(e.fanIn()));
            case EMBEDDING -> (float) (LOGIT_STD / Math.sqrt(e.shape()[1]));
            case BIAS, NORM_WEIGHT, NORM_BIAS -> SMALL_STD;
        };
    }

    /** Approximately standard normal value number {@code i} of the stream {@code key}. */
    static float standard(long key, long i) {
        long z = mix(key + i * 0x9E3779B97F4A7C15L);
        long sum = (z & 0xffff) + ((z >>> 16) & 0xffff) + ((z >>> 32) & 0xffff) + (z >>> 48);
        return (sum - 131070L) * IRWIN_HALL_SCALE;
    }

    /** SplitMix64's finaliser: a bijective 64-bit mix with good avalanche. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
