package io.flexstream.kernel;

import java.util.Locale;
import java.util.function.Consumer;

import io.flexstream.kernel.cuda.CudaKernels;
import io.flexstream.kernel.cuda.CudaProbe;
import io.flexstream.kernel.cuda.CudaUnavailableException;
import io.flexstream.kernel.cuda.DeviceInfo;

/**
 * Picks the compute backend: {@code cpu} (the Vector API on all cores), {@code cuda} (one NVIDIA GPU through JCuda),
 * or {@code auto}, which probes the GPU once per JVM ({@link CudaProbe}), uses it when it works, and otherwise falls
 * back to the CPU, saying why. The choice is always logged with the device it landed on.
 */
public final class Backends {

    /** What {@code --backend} asks for. */
    public enum Choice {
        AUTO, CPU, CUDA;

        /** "auto", "cpu" or "cuda", any case; anything else is an error listing them. */
        public static Choice parse(String text) {
            try {
                return valueOf(text.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--backend must be auto, cpu or cuda, got '" + text + "'", e);
            }
        }
    }

    /**
     * Device memory left out of the default weight budget: the cuda backend's staging and activation buffers and the
     * context itself live there too.
     */
    static final long DEVICE_HEADROOM = 2L << 30;

    private Backends() {
    }

    /**
     * @param threads          CPU threads (0 = all cores): the cpu backend's, or the cuda backend's host-side
     *                         elementwise work
     * @param deviceBytes      the cuda backend's weight budget (the device tier), 0 for the device's memory less
     *                         {@link #DEVICE_HEADROOM}
     * @param weightsMayChange true for the offloading engine, whose weight working buffers are rewritten in place
     * @param log              receives one line naming the backend and device chosen (and why, on a fallback)
     * @throws CudaUnavailableException when {@code cuda} is forced and the GPU cannot be used
     */
    public static Kernels create(Choice choice, int threads, long deviceBytes, boolean weightsMayChange,
                                 Consumer<String> log) {
        if (choice == Choice.CPU) {
            Kernels cpu = cpu(threads);
            log.accept("backend: " + cpu.name() + " (--backend cpu)");
            return cpu;
        }
        CudaProbe.Result probe = CudaProbe.probe();
        if (probe instanceof CudaProbe.Available(DeviceInfo device)) {
            long budget = deviceBytes > 0 ? deviceBytes : Math.max(0, device.totalBytes() - DEVICE_HEADROOM);
            CudaKernels.Config config = CudaKernels.Config.of(budget, weightsMayChange);
            if (threads > 0) {
                config = new CudaKernels.Config(config.weightBudgetBytes(), config.trust(), config.chunkBytes(),
                        config.elementwiseOnDevice(), threads);
            }
            CudaKernels cuda = new CudaKernels(device, config);
            log.accept("backend: cuda on " + device.describe() + "; " + cuda.name() + " (--backend "
                    + choice.name().toLowerCase(Locale.ROOT) + ")");
            return cuda;
        }
        String reason = ((CudaProbe.Unavailable) probe).reason();
        if (choice == Choice.CUDA) {
            throw new CudaUnavailableException("--backend cuda was requested but the GPU cannot be used: " + reason
                    + ". Fix: run on a machine with an NVIDIA GPU of compute capability 8.0 or newer and a driver "
                    + "of R580 or later (CUDA 13, libcuda.so.1), or pass --backend cpu (or auto to fall back).");
        }
        Kernels cpu = cpu(threads);
        log.accept("backend: " + cpu.name() + " (--backend auto: CUDA unavailable: " + reason + ")");
        return cpu;
    }

    private static Kernels cpu(int threads) {
        return threads > 0 ? new CpuKernels(threads) : new CpuKernels();
    }
}
