package io.flexstream.kernel.cuda;

import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR;
import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR;
import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuInit;

import java.nio.charset.StandardCharsets;

import jcuda.CudaException;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.JCudaDriver;

/**
 * Whether the cuda backend can run here, decided once per JVM. Without an NVIDIA driver the first JCuda call throws
 * an {@link UnsatisfiedLinkError} (libJCudaDriver cannot link libcuda.so.1) and every later call a
 * {@link NoClassDefFoundError}, so the answer is computed once, with {@link LinkageError} caught, and cached. A
 * machine with a driver but no device, a device older than the fatbin supports, or a module that fails to load are
 * reported the same way: as a reason, never as an exception.
 *
 * <p>{@code -Dflexstream.cuda.disable=true} makes the probe answer "unavailable" without touching the driver: the
 * fallback path can then be exercised on a GPU machine too.
 */
public final class CudaProbe {

    /** The probe's answer. */
    public sealed interface Result permits Available, Unavailable {
    }

    /** The backend works on this device: the driver initialised and the kernels loaded. */
    public record Available(DeviceInfo device) implements Result {
    }

    /** It does not; {@code reason} says why in a sentence. */
    public record Unavailable(String reason) implements Result {
    }

    /** The oldest architecture the fatbin has SASS for (sm_80); older GPUs cannot run it (the PTX is compute_90). */
    static final int MIN_MAJOR = 8;

    private CudaProbe() {
    }

    /** The cached answer (the driver is probed on the first call only). */
    public static Result probe() {
        if (Boolean.getBoolean("flexstream.cuda.disable")) {
            return new Unavailable("disabled by -Dflexstream.cuda.disable=true");
        }
        return Holder.RESULT;
    }

    private static final class Holder {
        static final Result RESULT = run();
    }

    private static Result run() {
        try {
            JCudaDriver.setExceptionsEnabled(true);
            cuInit(0);
            int[] count = new int[1];
            cuDeviceGetCount(count);
            if (count[0] == 0) {
                return new Unavailable("the NVIDIA driver is installed but reports no CUDA device");
            }
            DeviceInfo info = describe(0);
            if (info.major() < MIN_MAJOR) {
                return new Unavailable(info.describe() + " is older than compute capability 8.0, the oldest the "
                        + "kernels are compiled for (sm_80, sm_90 and compute_90 PTX)");
            }
            loadKernelsOnce(info.ordinal());
            return new Available(info);
        } catch (LinkageError e) {
            return new Unavailable("JCuda's driver binding could not be loaded (" + firstLine(e)
                    + "); this machine has no NVIDIA driver (libcuda.so.1)");
        } catch (CudaException e) {
            return new Unavailable("the CUDA driver failed: " + firstLine(e));
        } catch (RuntimeException e) {
            return new Unavailable("the CUDA backend failed to start: " + firstLine(e));
        }
    }

    /** The driver's description of a device; the driver must be initialised. */
    static DeviceInfo describe(int ordinal) {
        CUdevice device = new CUdevice();
        cuDeviceGet(device, ordinal);
        byte[] name = new byte[256];
        cuDeviceGetName(name, name.length, device);
        int length = 0;
        while (length < name.length && name[length] != 0) {
            length++;
        }
        long[] total = new long[1];
        cuDeviceTotalMem(total, device);
        int[] major = new int[1];
        int[] minor = new int[1];
        cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
        cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
        int[] driver = new int[1];
        cuDriverGetVersion(driver);
        return new DeviceInfo(ordinal, new String(name, 0, length, StandardCharsets.US_ASCII), total[0], major[0],
                minor[0], driver[0]);
    }

    /** Proves the fatbin loads on this device (a driver too old for the PTX, say, fails here rather than later). */
    private static void loadKernelsOnce(int ordinal) {
        CUdevice device = new CUdevice();
        cuDeviceGet(device, ordinal);
        CUcontext context = new CUcontext();
        cuDevicePrimaryCtxRetain(context, device);
        try {
            cuCtxSetCurrent(context);
            new KernelModule(FatbinImage.fromClasspath()).close();
        } finally {
            cuDevicePrimaryCtxRelease(device);
        }
    }

    private static String firstLine(Throwable e) {
        String message = String.valueOf(e.getMessage());
        int newline = message.indexOf('\n');
        return e.getClass().getSimpleName() + ": " + (newline < 0 ? message : message.substring(0, newline));
    }
}
