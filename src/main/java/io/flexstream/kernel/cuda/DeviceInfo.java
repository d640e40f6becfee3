package io.flexstream.kernel.cuda;

/**
 * The GPU the cuda backend runs on, as the driver reports it.
 *
 * @param ordinal       CUDA device ordinal (always 0: the product is a single-GPU engine)
 * @param name          e.g. "NVIDIA H100 80GB HBM3"
 * @param totalBytes    device memory
 * @param major         compute capability, e.g. 9 for 9.0
 * @param minor         compute capability minor
 * @param driverVersion as cuDriverGetVersion reports it, e.g. 13000 for CUDA 13.0
 */
public record DeviceInfo(int ordinal, String name, long totalBytes, int major, int minor, int driverVersion) {

    /** One line for logs: "NVIDIA H100 80GB HBM3 (device 0, 79.1 GiB, compute capability 9.0, driver CUDA 13.0)". */
    public String describe() {
        return String.format("%s (device %d, %.1f GiB, compute capability %d.%d, driver CUDA %d.%d)", name, ordinal,
                totalBytes / (double) (1L << 30), major, minor, driverVersion / 1000, driverVersion % 1000 / 10);
    }
}
