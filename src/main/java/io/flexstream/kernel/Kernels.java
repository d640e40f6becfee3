package io.flexstream.kernel;

import java.lang.foreign.MemorySegment;

/**
 * The compute operations the engine needs, one implementation per backend. Every tensor is a row-major fp32 array in
 * a {@link MemorySegment} (native byte order, offsets in bytes as usual for segments, sizes below in elements).
 * Segments handed to a backend must be accessible from any thread (allocate them from a shared or global arena):
 * backends split work over threads.
 *
 * <p>Batch invariance: every output element must be bitwise identical whatever the number of rows {@code m} and
 * whichever row it sits in. That is what makes a prompt generate the same tokens alone and in a batch; fast kernels
 * keep their reduction order fixed per element to honour it.
 */
public interface Kernels {

    /** A short name for logs and benchmark output, e.g. "cpu-vector(2 threads)". */
    String name();

    /**
     * A linear layer in PyTorch's layout: {@code out[i][j] = bias[j] + sum_p x[i][p] * w[j][p]}.
     *
     * @param x    input, m rows of k
     * @param w    weight, n rows of k ([out_features, in_features])
     * @param bias n values, or null for no bias
     * @param out  output, m rows of n (must not overlap x)
     */
    void linear(MemorySegment x, MemorySegment w, MemorySegment bias, MemorySegment out, int m, int n, int k);

    /**
     * LayerNorm over the last dimension with biased variance: {@code out = (x - mean) / sqrt(var + eps) * gamma + beta}.
     * gamma and beta may be null (elementwise_affine=false). out may equal x.
     */
    void layerNorm(MemorySegment x, MemorySegment gamma, MemorySegment beta, MemorySegment out, int rows, int dim,
                   float eps);

    /** In place: {@code x[i] = max(x[i], 0)} for i below n. */
    void relu(MemorySegment x, long n);

    /** In place: {@code x[i] *= factor} for i below n. */
    void scale(MemorySegment x, long n, float factor);

    /** In place: {@code acc[i] += x[i]} for i below n. */
    void add(MemorySegment acc, MemorySegment x, long n);

    /**
     * Causal multi-head attention of new queries against a KV cache that already holds their own keys and values.
     *
     * <p>Layouts: {@code q} and {@code out} are [batch][qLen][heads*headDim]; {@code kCache} and {@code vCache} are
     * [batch][capacity][heads*headDim] with positions [0, kvLen) filled; {@code keyValid} is [batch][capacity] floats,
     * 1 for a real token and 0 for padding. Query t of a sequence sits at cache position kvLen - qLen + t and sees
     * the keys at positions up to and including its own that are valid. Queries are already scaled by
     * headDim^-1/2. Scores are softmaxed in fp32 over the visible keys only; a query that sees no key (a pad
     * position) gets an all-zero output row.
     */
    void attention(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment keyValid,
                   MemorySegment out, int batch, int qLen, int kvLen, int capacity, int heads, int headDim);
}
