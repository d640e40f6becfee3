package io.flexstream.kernel.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;

/**
 * The kernels of native/flexstream_kernels.cu loaded into the current CUDA context from the fatbin on the classpath.
 * The driver picks the SASS for the device's architecture, or JIT-compiles the PTX on a newer GPU.
 */
final class KernelModule implements AutoCloseable {

    /** Every extern "C" kernel of flexstream_kernels.cu; a missing one fails the load with its name. */
    static final List<String> NAMES = List.of("fs_linear_f32", "fs_linear_q4", "fs_layer_norm", "fs_relu",
            "fs_scale", "fs_add", "fs_attention", "fs_argmax_rows");

    /** Threads per block of every launch; the kernels' reductions and tiles assume it (BLOCK in the .cu). */
    static final int THREADS = 256;

    private final CUmodule module = new CUmodule();
    private final Map<String, CUfunction> functions = new HashMap<>();

    /** Loads the module into the context current on this thread (the caller made it current). */
    KernelModule(FatbinImage image) {
        cuModuleLoadData(module, image.bytes());
        try {
            for (String name : NAMES) {
                CUfunction f = new CUfunction();
                cuModuleGetFunction(f, module, name);
                functions.put(name, f);
            }
        } catch (RuntimeException e) {
            cuModuleUnload(module);
            throw e;
        }
    }

    CUfunction function(String name) {
        CUfunction f = functions.get(name);
        if (f == null) {
            throw new IllegalArgumentException("no kernel " + name + " in the module; known: " + NAMES);
        }
        return f;
    }

    /**
     * Enqueues {@code kernel} on {@code stream} with {@link #THREADS} threads per block. Arguments in the kernel's
     * order: device pointers (null for a null pointer), Integer, Long (a 64-bit {@code long long}) or Float.
     */
    void launch(String kernel, int[] grid, int sharedBytes, CUstream stream, Object... args) {
        CUfunction f = function(kernel);
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            params[i] = switch (args[i]) {
                case null -> Pointer.to(new long[] {0L});
                case CUdeviceptr p -> Pointer.to(p);
                case Integer v -> Pointer.to(new int[] {v});
                case Long v -> Pointer.to(new long[] {v});
                case Float v -> Pointer.to(new float[] {v});
                default -> throw new IllegalArgumentException("unsupported kernel argument " + args[i].getClass());
            };
        }
        cuLaunchKernel(f, grid[0], grid[1], grid[2], THREADS, 1, 1, sharedBytes, stream, Pointer.to(params), null);
    }

    @Override
    public void close() {
        cuModuleUnload(module);
    }
}
