package io.flexstream.kernel.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import io.flexstream.kernel.CpuKernels;
import io.flexstream.kernel.Kernels;
import io.flexstream.quant.QuantizedMatrix;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * The cuda backend: {@link Kernels} on one NVIDIA GPU through JCuda's driver API, with the kernels of
 * native/flexstream_kernels.cu loaded from the fatbin in the jar.
 *
 * <p>Where data lives. The engine hands every operation host-memory segments and reads the results from host memory
 * when the call returns, so: weights (the {@code w}, bias, gamma and beta arguments) stay on the device in a
 * {@link WeightCache} bounded by the device budget and cross PCIe once; activations and the KV cache cross per call,
 * staged through pinned buffers by a {@link TransferPipeline} that overlaps staging, both copy directions and compute
 * of successive row chunks. Attention uploads only the filled cache positions [0, kvLen) of each sequence.
 *
 * <p>relu, scale and add run on the host by default ({@link Config#elementwiseOnDevice} off): each is one IEEE
 * operation per element, so host and device give the same bits, and on data that is in host memory anyway one
 * host pass beats two copies and two PCIe crossings. The device kernels exist, are tested, and run with
 * {@code -Dflexstream.cuda.elementwise=device}.
 *
 * <p>Batch invariance: each output element is computed by one thread (or block) in an order fixed by the shapes
 * that define it, and chunking splits only rows (sequences for attention), so results do not depend on m or on the
 * chunk size. Results differ from {@link io.flexstream.kernel.ScalarKernels} by rounding (fused multiply-add, other
 * summation trees); the differential tests bound it.
 *
 * <p>Calls are serialised (synchronized): one context, one set of streams and staging buffers. Close it to free the
 * device memory and release the context.
 */
public final class CudaKernels implements Kernels, AutoCloseable {

    private static final int TILE = 64;
    /** Dynamic shared memory available to a block without opting in: bounds kvLen + headDim in attention. */
    private static final int SHARED_LIMIT = 48 * 1024 - KernelModule.THREADS * 4;

    /**
     * @param weightBudgetBytes   device memory the weight cache may hold (the device tier)
     * @param trust               whether weight segments may be rewritten in place while alive ({@link WeightCache})
     * @param chunkBytes          staging slot size: a call is cut into row chunks of at most this many input bytes
     * @param elementwiseOnDevice run relu, scale and add on the GPU instead of the host
     * @param hostThreads         threads of the host kernels used for elementwise ops (0 = all cores)
     */
    public record Config(long weightBudgetBytes, WeightTrust trust, long chunkBytes,
                         boolean elementwiseOnDevice, int hostThreads) {

        /** Defaults: 32 MiB chunks, elementwise on the host unless -Dflexstream.cuda.elementwise=device. */
        public static Config of(long weightBudgetBytes, boolean weightsMayChange) {
            return new Config(weightBudgetBytes, weightsMayChange ? WeightTrust.VERIFY : WeightTrust.STABLE,
                    Long.getLong("flexstream.cuda.chunkBytes", 32L << 20),
                    "device".equals(System.getProperty("flexstream.cuda.elementwise")), 0);
        }

        public Config withElementwiseOnDevice(boolean onDevice) {
            return new Config(weightBudgetBytes, trust, chunkBytes, onDevice, hostThreads);
        }

        public Config withChunkBytes(long bytes) {
            return new Config(weightBudgetBytes, trust, bytes, elementwiseOnDevice, hostThreads);
        }
    }

    private final DeviceInfo device;
    private final Config config;
    private final CUdevice cuDevice = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final KernelModule module;
    private final TransferPipeline transfers;
    private final WeightCache weights;
    private final CpuKernels host;
    private final HostCopier copier;
    private boolean closed;

    /**
     * Opens the backend on device 0. Call only when {@link CudaProbe#probe()} answered {@link CudaProbe.Available};
     * {@link io.flexstream.kernel.Backends} does that.
     */
    public CudaKernels(DeviceInfo device, Config config) {
        if (config.chunkBytes() < 4096) {
            throw new IllegalArgumentException("chunkBytes must be at least 4096, got " + config.chunkBytes());
        }
        this.device = device;
        this.config = config;
        JCudaDriver.setExceptionsEnabled(true); // every driver error becomes a CudaException naming it
        cuDeviceGet(cuDevice, device.ordinal());
        cuDevicePrimaryCtxRetain(context, cuDevice);
        cuCtxSetCurrent(context);
        KernelModule m = null;
        TransferPipeline t = null;
        try {
            m = new KernelModule(FatbinImage.fromClasspath());
            t = new TransferPipeline(new HostCopier(copyThreads(config.hostThreads())));
        } catch (RuntimeException e) {
            if (m != null) {
                m.close();
            }
            cuDevicePrimaryCtxRelease(cuDevice);
            throw e;
        }
        this.module = m;
        this.transfers = t;
        this.copier = t.copier();
        this.weights = new WeightCache(config.weightBudgetBytes(), config.trust(), transfers, config.chunkBytes());
        this.host = config.elementwiseOnDevice() ? null
                : config.hostThreads() > 0 ? new CpuKernels(config.hostThreads()) : new CpuKernels();
    }

    /** Copying threads: half the cores (at most 8), enough to outrun one PCIe copy engine. */
    private static int copyThreads(int hostThreads) {
        int cores = hostThreads > 0 ? hostThreads : Runtime.getRuntime().availableProcessors();
        return Math.max(1, Math.min(8, cores / 2));
    }

    public DeviceInfo device() {
        return device;
    }

    @Override
    public String name() {
        return String.format("cuda(%s, cc %d.%d, weight cache %.1f GiB%s, elementwise on %s)", device.name(),
                device.major(), device.minor(), config.weightBudgetBytes() / (double) (1L << 30),
                config.trust() == WeightTrust.VERIFY ? " verified" : "",
                config.elementwiseOnDevice() ? "device" : "host");
    }

    /** Weight cache hits, misses and bytes, for run reports. */
    public synchronized String statistics() {
        return weights.statistics();
    }

    // ---- linear ------------------------------------------------------------------------------------------------

    @Override
    public synchronized void linear(MemorySegment x, MemorySegment w, MemorySegment bias, MemorySegment out, int m,
                                    int n, int k) {
        if (m <= 0 || n <= 0) {
            return;
        }
        begin();
        CUdeviceptr dw = weights.get(w, 4L * n * k);
        CUdeviceptr db = bias == null ? null : weights.get(bias, 4L * n);
        rowChunks(m, 4L * k, 4L * n, x, out, (in, o, rows, stream) -> launch("fs_linear_f32", grid(n, rows), stream,
                in, dw, db, o, rows, n, k));
    }

    /**
     * The fused 4-bit product of {@link io.flexstream.quant.QuantizedLinear}, same contract: {@code out = x W'^T +
     * bias} with W' the dequantized {@code w} ({@code q / scale + min} per element). The packed codes and metadata
     * are cached on the device like any weight (about 0.14x the bytes of fp32).
     */
    public synchronized void linearQuantized(MemorySegment x, QuantizedMatrix w, MemorySegment bias, MemorySegment out,
                                             int m, int n, int k) {
        if (w.rows() != n || w.cols() != k) {
            throw new IllegalArgumentException("weight is " + w.rows() + "x" + w.cols() + ", expected " + n + "x" + k);
        }
        if (m <= 0) {
            return;
        }
        begin();
        CUdeviceptr packed = weights.get(w.packed(), w.packed().byteSize());
        CUdeviceptr meta = weights.get(w.metadata(), w.metadata().byteSize());
        CUdeviceptr db = bias == null ? null : weights.get(bias, 4L * n);
        int groupSize = w.groupSize();
        int groupsPerRow = w.groupsPerRow();
        rowChunks(m, 4L * k, 4L * n, x, out, (in, o, rows, stream) -> launch("fs_linear_q4", grid(n, rows), stream,
                in, packed, meta, db, o, rows, n, k, groupSize, groupsPerRow));
    }

    private static int[] grid(int n, int rows) {
        return new int[] {(n + TILE - 1) / TILE, (rows + TILE - 1) / TILE, 1};
    }

    // ---- layer norm --------------------------------------------------------------------------------------------

    @Override
    public synchronized void layerNorm(MemorySegment x, MemorySegment gamma, MemorySegment beta, MemorySegment out,
                                       int rows, int dim, float eps) {
        if (rows <= 0) {
            return;
        }
        begin();
        CUdeviceptr dg = gamma == null ? null : weights.get(gamma, 4L * dim);
        CUdeviceptr dbeta = beta == null ? null : weights.get(beta, 4L * dim);
        rowChunks(rows, 4L * dim, 4L * dim, x, out, (in, o, r, stream) -> launch("fs_layer_norm",
                new int[] {r, 1, 1}, stream, in, dg, dbeta, o, r, dim, eps));
    }

    // ---- elementwise -------------------------------------------------------------------------------------------

    @Override
    public synchronized void relu(MemorySegment x, long n) {
        if (host != null) {
            host.relu(x, n);
            return;
        }
        begin();
        rowChunks(n, 4, 4, x, x, (in, o, count, stream) -> launch("fs_relu", elementGrid(count), stream, in, o,
                (long) count));
    }

    @Override
    public synchronized void scale(MemorySegment x, long n, float factor) {
        if (host != null) {
            host.scale(x, n, factor);
            return;
        }
        begin();
        rowChunks(n, 4, 4, x, x, (in, o, count, stream) -> launch("fs_scale", elementGrid(count), stream, in, o,
                (long) count, factor));
    }

    @Override
    public synchronized void add(MemorySegment acc, MemorySegment x, long n) {
        if (host != null) {
            host.add(acc, x, n);
            return;
        }
        begin();
        long per = Math.max(1, config.chunkBytes() / 8);
        List<TransferPipeline.Chunk> chunks = new ArrayList<>();
        for (long from = 0; from < n; from += per) {
            long count = Math.min(per, n - from);
            long offset = 4 * from;
            chunks.add(new TransferPipeline.Chunk() {
                public long inBytes() {
                    return 8 * count;
                }

                public long outBytes() {
                    return 4 * count;
                }

                public void stageIn(MemorySegment pinned) {
                    copier.copy(acc, offset, pinned, 0, 4 * count);
                    copier.copy(x, offset, pinned, 4 * count, 4 * count);
                }

                public void launch(CUdeviceptr in, CUdeviceptr out, CUstream stream) {
                    CudaKernels.this.launch("fs_add", elementGrid((int) count), stream, in,
                            in.withByteOffset(4 * count), out, count);
                }

                public void stageOut(MemorySegment pinned) {
                    copier.copy(pinned, 0, acc, offset, 4 * count);
                }
            });
        }
        transfers.run(chunks);
    }

    private static int[] elementGrid(int count) {
        return new int[] {(int) Math.min((count + KernelModule.THREADS - 1L) / KernelModule.THREADS, 1 << 20), 1, 1};
    }

    // ---- attention ---------------------------------------------------------------------------------------------

    @Override
    public synchronized void attention(MemorySegment q, MemorySegment kCache, MemorySegment vCache,
                                       MemorySegment keyValid, MemorySegment out, int batch, int qLen, int kvLen,
                                       int capacity, int heads, int headDim) {
        if (qLen > kvLen || kvLen > capacity) {
            throw new IllegalArgumentException(
                    "need qLen <= kvLen <= capacity, got " + qLen + ", " + kvLen + ", " + capacity);
        }
        int shared = 4 * (kvLen + headDim);
        if (shared > SHARED_LIMIT) {
            throw new IllegalArgumentException("attention over " + kvLen + " positions of head size " + headDim
                    + " needs " + shared + " bytes of shared memory per block; the cuda kernel supports up to "
                    + SHARED_LIMIT + " (kvLen + headDim <= " + SHARED_LIMIT / 4 + ")");
        }
        if (batch <= 0 || qLen <= 0) {
            return;
        }
        begin();
        long hidden = (long) heads * headDim;
        long qBytes = 4 * qLen * hidden;       // per sequence
        long kvBytes = 4 * kvLen * hidden;     // filled positions of one sequence's K (or V)
        long validBytes = 4L * kvLen;
        long perSequence = qBytes + 2 * kvBytes + validBytes;
        int per = (int) Math.max(1, Math.min(batch, config.chunkBytes() / perSequence));
        List<TransferPipeline.Chunk> chunks = new ArrayList<>();
        for (int b0 = 0; b0 < batch; b0 += per) {
            int first = b0;
            int count = Math.min(per, batch - b0);
            chunks.add(new TransferPipeline.Chunk() {
                public long inBytes() {
                    return count * perSequence;
                }

                public long outBytes() {
                    return count * qBytes;
                }

                // Packed as [q of count sequences | K | V | keyValid], the cache with capacity kvLen.
                public void stageIn(MemorySegment pinned) {
                    copier.copy(q, first * qBytes, pinned, 0, count * qBytes);
                    long kAt = count * qBytes;
                    long vAt = kAt + count * kvBytes;
                    long validAt = vAt + count * kvBytes;
                    long cacheStride = 4 * capacity * hidden;
                    copier.forEach(count, s -> {
                        long from = (long) (first + s) * cacheStride;
                        MemorySegment.copy(kCache, from, pinned, kAt + s * kvBytes, kvBytes);
                        MemorySegment.copy(vCache, from, pinned, vAt + s * kvBytes, kvBytes);
                        MemorySegment.copy(keyValid, 4L * (first + s) * capacity, pinned, validAt + s * validBytes,
                                validBytes);
                    });
                }

                public void launch(CUdeviceptr in, CUdeviceptr o, CUstream stream) {
                    long kAt = count * qBytes;
                    long vAt = kAt + count * kvBytes;
                    long validAt = vAt + count * kvBytes;
                    CudaKernels.this.launchShared("fs_attention", new int[] {qLen, heads, count}, shared, stream, in,
                            in.withByteOffset(kAt), in.withByteOffset(vAt), in.withByteOffset(validAt), o, count,
                            qLen, kvLen, kvLen, heads, headDim);
                }

                public void stageOut(MemorySegment pinned) {
                    copier.copy(pinned, 0, out, first * qBytes, count * qBytes);
                }
            });
        }
        transfers.run(chunks);
    }

    // ---- sampling ----------------------------------------------------------------------------------------------

    /**
     * The index of the largest value of each of {@code rows} rows of {@code cols} logits, the lowest index among
     * equal maxima, NaN never chosen (an all-NaN row gives 0): greedy sampling without copying logits back.
     */
    public synchronized int[] argmaxRows(MemorySegment logits, int rows, int cols) {
        int[] result = new int[Math.max(rows, 0)];
        if (rows <= 0 || cols <= 0) {
            return result;
        }
        begin();
        rowChunks(rows, 4L * cols, 4, logits, (in, o, r, stream) -> launch("fs_argmax_rows", new int[] {r, 1, 1},
                stream, in, o, r, cols), (pinned, firstRow, count) ->
                MemorySegment.copy(pinned, ValueLayout.JAVA_INT, 0, result, (int) firstRow, count));
        return result;
    }

    // ---- plumbing ----------------------------------------------------------------------------------------------

    private void begin() {
        if (closed) {
            throw new IllegalStateException("the cuda backend is closed");
        }
        cuCtxSetCurrent(context); // the context is current per thread; the engine may call from any thread
        weights.beginCall();
    }

    /** A call over {@code rows} rows of {@code inRow} input bytes and {@code outRow} output bytes, cut into chunks. */
    private void rowChunks(long rows, long inRow, long outRow, MemorySegment in, MemorySegment out, RowChunk.Launch body) {
        rowChunks(rows, inRow, outRow, in, body, (pinned, first, count) ->
                copier.copy(pinned, 0, out, first * outRow, count * outRow));
    }

    private void rowChunks(long rows, long inRow, long outRow, MemorySegment in, RowChunk.Launch body, RowChunk.Sink sink) {
        long per = Math.max(1, Math.min(Integer.MAX_VALUE, config.chunkBytes() / Math.max(inRow, outRow)));
        List<TransferPipeline.Chunk> chunks = new ArrayList<>();
        for (long r0 = 0; r0 < rows; r0 += per) {
            chunks.add(new RowChunk(r0, (int) Math.min(per, rows - r0), inRow, outRow, in, copier, body, sink));
        }
        transfers.run(chunks);
    }

    private void launch(String kernel, int[] grid, CUstream stream, Object... args) {
        module.launch(kernel, grid, 0, stream, args);
    }

    private void launchShared(String kernel, int[] grid, int sharedBytes, CUstream stream, Object... args) {
        module.launch(kernel, grid, sharedBytes, stream, args);
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        cuCtxSetCurrent(context);
        try {
            weights.close();
            transfers.close();
            module.close();
        } finally {
            cuDevicePrimaryCtxRelease(cuDevice);
            if (host != null) {
                host.close();
            }
        }
    }
}
