// FlexStream's CUDA kernels: the operations of io.flexstream.kernel.Kernels (plus the fused 4-bit matrix product of
// io.flexstream.quant.QuantizedLinear and a row argmax for greedy sampling), compiled ahead of time by nvcc into
// flexstream_kernels.fatbin and launched through JCuda's driver API by io.flexstream.kernel.cuda.CudaKernels.
//
// Conventions shared with the Java side (keep them in step with CudaKernels and KernelModule):
//   - every tensor is row-major fp32, sizes in elements; 64-bit element counts where a tensor may exceed 2^31;
//   - names are extern "C" so the driver API finds them unmangled (KernelModule.NAMES lists them);
//   - batch invariance (Kernels' contract): each output element is computed by one thread (or one block) with a
//     reduction order that depends only on the shapes that define it (k, dim, headDim, the query's position), never
//     on m, on the element's row or on the grid, so a row computes to the same bits alone or in a batch, and a call
//     cut into row chunks computes the same bits as one call.
// Numerics: sums are fp32 with fused multiply-add (fmaf), so results differ from the scalar Java reference (separate
// multiply and add) by rounding only; the differential tests bound that difference.

#include <cuda_fp16.h>
#include <stdint.h>

// ---------------------------------------------------------------------------------------------------------------
// Matrix products: out[i][j] = bias[j] + sum_p x[i][p] * w[j][p]   (x: m x k, w: n x k, PyTorch's Linear layout)
// ---------------------------------------------------------------------------------------------------------------
// 64 x 64 output tile per block of 256 threads (16 x 16), each thread owning a 4 x 4 sub-tile strided by 16 so that a
// warp's shared-memory reads hit distinct banks; k advances in slices of 16 staged through shared memory. Every
// output element is one fmaf chain over p = 0, 1, ..., k-1 followed by the bias: the order is fixed by k alone.

#define TILE_M 64
#define TILE_N 64
#define TILE_K 16

// The weight element w[j][p] of the dense product.
struct DenseWeight {
    const float* w;
    int k;
    __device__ float operator()(int j, int p) const { return w[(size_t)j * k + p]; }
};

// The weight element W'[j][p] of a 4-bit QuantizedMatrix, dequantized as the Java reference does: q / scale + min
// in fp32 (IEEE division, as nvcc compiles '/' by default). Layout (see QuantizedMatrix): row j has groupsPerRow
// groups of groupSize consecutive columns; group slot (j * groupsPerRow + g) holds groupSize / 2 bytes read as
// W = groupSize / 8 little-endian 32-bit words, element e of the group in word e mod W at bits 4 * (e div W);
// its metadata are two little-endian fp16 values (scale, min) at 4 * slot bytes. Columns past k are never read.
struct Nibble4Weight {
    const uint32_t* packed;
    const __half* meta;
    int groupSize;
    int groupsPerRow;
    __device__ float operator()(int j, int p) const {
        int g = p / groupSize;
        int e = p - g * groupSize;
        int words = groupSize >> 3;
        size_t slot = (size_t)j * groupsPerRow + g;
        uint32_t word = packed[slot * words + (e % words)];
        float q = (float)((word >> (4 * (e / words))) & 0xFu);
        float scale = __half2float(meta[2 * slot]);
        float mn = __half2float(meta[2 * slot + 1]);
        return q / scale + mn;
    }
};

template <typename Weight>
__device__ void tiledLinear(const float* __restrict__ x, Weight weight, const float* __restrict__ bias,
                            float* __restrict__ out, int m, int n, int k) {
    __shared__ float xs[TILE_K][TILE_M + 1];
    __shared__ float ws[TILE_K][TILE_N + 1];
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    int row0 = blockIdx.y * TILE_M, col0 = blockIdx.x * TILE_N;
    float acc[4][4];
#pragma unroll
    for (int a = 0; a < 4; a++)
#pragma unroll
        for (int b = 0; b < 4; b++) acc[a][b] = 0.f;

    for (int p0 = 0; p0 < k; p0 += TILE_K) {
        // 64 x 16 of x and 64 x 16 of w: 1024 floats each, 4 per thread; zeros outside the matrix.
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int idx = threadIdx.x + r * 256;
            int rr = idx / TILE_K, pp = idx % TILE_K;
            int gi = row0 + rr, gj = col0 + rr, gp = p0 + pp;
            xs[pp][rr] = (gi < m && gp < k) ? x[(size_t)gi * k + gp] : 0.f;
            ws[pp][rr] = (gj < n && gp < k) ? weight(gj, gp) : 0.f;
        }
        __syncthreads();
        int slice = min(TILE_K, k - p0); // the padded tail is skipped, not added as zeros: the chain stays k long
        for (int pp = 0; pp < slice; pp++) {
            float xv[4], wv[4];
#pragma unroll
            for (int a = 0; a < 4; a++) xv[a] = xs[pp][ty + 16 * a];
#pragma unroll
            for (int b = 0; b < 4; b++) wv[b] = ws[pp][tx + 16 * b];
#pragma unroll
            for (int a = 0; a < 4; a++)
#pragma unroll
                for (int b = 0; b < 4; b++) acc[a][b] = fmaf(xv[a], wv[b], acc[a][b]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int a = 0; a < 4; a++) {
        int i = row0 + ty + 16 * a;
        if (i >= m) continue;
#pragma unroll
        for (int b = 0; b < 4; b++) {
            int j = col0 + tx + 16 * b;
            if (j < n) out[(size_t)i * n + j] = bias != nullptr ? acc[a][b] + bias[j] : acc[a][b];
        }
    }
}

// grid (ceil(n / 64), ceil(m / 64)), block 256. bias may be null.
extern "C" __global__ void __launch_bounds__(256)
fs_linear_f32(const float* x, const float* w, const float* bias, float* out, int m, int n, int k) {
    tiledLinear(x, DenseWeight{w, k}, bias, out, m, n, k);
}

// The fused 4-bit product: same tiling, the weight tile dequantized while it is staged. grid and block as above.
extern "C" __global__ void __launch_bounds__(256)
fs_linear_q4(const float* x, const uint32_t* packed, const __half* meta, const float* bias, float* out, int m,
             int n, int k, int groupSize, int groupsPerRow) {
    tiledLinear(x, Nibble4Weight{packed, meta, groupSize, groupsPerRow}, bias, out, m, n, k);
}

// ---------------------------------------------------------------------------------------------------------------
// Reductions inside one block of BLOCK threads: thread t holds a partial, the tree is fixed, so the result depends
// only on the partials.
// ---------------------------------------------------------------------------------------------------------------
#define BLOCK 256

__device__ float blockSum(float v, float* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
        __syncthreads();
    }
    float total = scratch[0];
    __syncthreads();
    return total;
}

__device__ float blockMax(float v, float* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) scratch[threadIdx.x] = fmaxf(scratch[threadIdx.x], scratch[threadIdx.x + s]);
        __syncthreads();
    }
    float total = scratch[0];
    __syncthreads();
    return total;
}

// LayerNorm over rows of dim with biased variance: two passes (mean, then the sum of squared deviations), as the
// Java backends. grid (rows), block 256. gamma and beta may be null; out may equal x.
extern "C" __global__ void __launch_bounds__(BLOCK)
fs_layer_norm(const float* x, const float* gamma, const float* beta, float* out, int rows, int dim, float eps) {
    __shared__ float scratch[BLOCK];
    const float* row = x + (size_t)blockIdx.x * dim;
    float* dst = out + (size_t)blockIdx.x * dim;
    float s = 0.f;
    for (int c = threadIdx.x; c < dim; c += BLOCK) s += row[c];
    float mean = blockSum(s, scratch) / dim;
    float sq = 0.f;
    for (int c = threadIdx.x; c < dim; c += BLOCK) {
        float d = row[c] - mean;
        sq = fmaf(d, d, sq);
    }
    float rstd = 1.0f / sqrtf(blockSum(sq, scratch) / dim + eps);
    for (int c = threadIdx.x; c < dim; c += BLOCK) {
        float y = (row[c] - mean) * rstd;
        if (gamma != nullptr) y *= gamma[c];
        if (beta != nullptr) y += beta[c];
        dst[c] = y;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Elementwise, grid-stride over 64-bit counts. One IEEE operation per element: bitwise equal to the Java backends.
// ---------------------------------------------------------------------------------------------------------------
#define GRID_STRIDE(i, n)                                                                \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n);         \
         i += (long long)gridDim.x * blockDim.x)

// Java's Math.max(x, 0f), not fmaxf: NaN stays NaN and -0 becomes +0, as in the Java backends.
extern "C" __global__ void fs_relu(const float* x, float* out, long long n) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        out[i] = v != v ? v : (v > 0.f ? v : 0.f);
    }
}

extern "C" __global__ void fs_scale(const float* x, float* out, long long n, float factor) {
    GRID_STRIDE(i, n)
        out[i] = x[i] * factor;
}

extern "C" __global__ void fs_add(const float* a, const float* b, float* out, long long n) {
    GRID_STRIDE(i, n)
        out[i] = a[i] + b[i];
}

// ---------------------------------------------------------------------------------------------------------------
// Causal attention against the KV cache, exactly as Kernels.attention documents it.
// q, out: [batch][qLen][heads * headDim]; k, v: [batch][capacity][heads * headDim] with positions [0, kvLen) filled;
// keyValid: [batch][capacity] floats (nonzero = real token). Query t sits at position kvLen - qLen + t and sees the
// valid keys at positions 0..position. Queries are pre-scaled. A query that sees no key gets an all-zero row.
// grid (qLen, heads, batch), block 256, dynamic shared memory (kvLen + headDim) floats.
// Scores: one warp per key, lane l summing d = l, l + 32, ... then a fixed xor-shuffle tree. Softmax in fp32 with
// expf. Output: thread per d, one fmaf chain over the visible keys in position order, divided by the sum at the end.
// ---------------------------------------------------------------------------------------------------------------
extern "C" __global__ void __launch_bounds__(BLOCK)
fs_attention(const float* q, const float* k, const float* v, const float* keyValid, float* out, int batch, int qLen,
             int kvLen, int capacity, int heads, int headDim) {
    extern __shared__ float shared[];
    __shared__ float scratch[BLOCK];
    float* scores = shared;          // [kvLen]
    float* query = shared + kvLen;   // [headDim]
    int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    int hidden = heads * headDim;
    int position = kvLen - qLen + t;
    const float* qRow = q + ((size_t)b * qLen + t) * hidden + (size_t)h * headDim;
    float* oRow = out + ((size_t)b * qLen + t) * hidden + (size_t)h * headDim;
    const float* valid = keyValid + (size_t)b * capacity;
    for (int d = threadIdx.x; d < headDim; d += BLOCK) query[d] = qRow[d];
    __syncthreads();

    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int j = warp; j <= position; j += BLOCK / 32) {
        const float* kRow = k + ((size_t)b * capacity + j) * hidden + (size_t)h * headDim;
        float dot = 0.f;
        for (int d = lane; d < headDim; d += 32) dot = fmaf(query[d], kRow[d], dot);
        for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
        if (lane == 0) scores[j] = valid[j] != 0.f ? dot : -INFINITY;
    }
    __syncthreads();

    float localMax = -INFINITY;
    for (int j = threadIdx.x; j <= position; j += BLOCK) localMax = fmaxf(localMax, scores[j]);
    float max = blockMax(localMax, scratch);
    if (max == -INFINITY) { // no visible key: a pad query
        for (int d = threadIdx.x; d < headDim; d += BLOCK) oRow[d] = 0.f;
        return;
    }
    float localSum = 0.f;
    for (int j = threadIdx.x; j <= position; j += BLOCK) {
        float p = valid[j] != 0.f ? expf(scores[j] - max) : 0.f;
        scores[j] = p;
        localSum += p;
    }
    float denominator = blockSum(localSum, scratch); // its __syncthreads also publishes scores
    for (int d = threadIdx.x; d < headDim; d += BLOCK) {
        float acc = 0.f;
        const float* vColumn = v + (size_t)b * capacity * hidden + (size_t)h * headDim + d;
        for (int j = 0; j <= position; j++) {
            if (valid[j] != 0.f) acc = fmaf(scores[j], vColumn[(size_t)j * hidden], acc);
        }
        oRow[d] = acc / denominator;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Greedy sampling helper: the index of each row's largest logit, the lowest index among equal maxima (what a
// sequential scan keeping the first maximum gives). NaN logits are never chosen; an all-NaN row gives 0.
// grid (rows), block 256.
// ---------------------------------------------------------------------------------------------------------------
extern "C" __global__ void __launch_bounds__(BLOCK)
fs_argmax_rows(const float* logits, int* out, int rows, int cols) {
    __shared__ float bestValue[BLOCK];
    __shared__ int bestIndex[BLOCK];
    const float* row = logits + (size_t)blockIdx.x * cols;
    float value = -INFINITY;
    int index = -1;
    for (int c = threadIdx.x; c < cols; c += BLOCK) {
        float x = row[c];
        if (x > value || (index < 0 && x == value)) { // strictly greater keeps the first (lowest) index per thread
            value = x;
            index = c;
        }
    }
    bestValue[threadIdx.x] = value;
    bestIndex[threadIdx.x] = index;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            float ov = bestValue[threadIdx.x + s];
            int oi = bestIndex[threadIdx.x + s];
            int mi = bestIndex[threadIdx.x];
            bool better = oi >= 0 && (mi < 0 || ov > bestValue[threadIdx.x] ||
                                      (ov == bestValue[threadIdx.x] && oi < mi));
            if (better) {
                bestValue[threadIdx.x] = ov;
                bestIndex[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = bestIndex[0] < 0 ? 0 : bestIndex[0];
}
