package io.flexstream.kernel.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;

import java.lang.foreign.MemorySegment;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * Grow-only buffers of device memory and of pinned (page-locked) host memory. Pinned memory is what lets a copy
 * engine move bytes while the host and the SMs do other work: the driver copies pageable memory through its own
 * staging, synchronously. Growing frees the old buffer, so callers grow only when no copy or kernel uses it.
 */
final class DeviceMemory {

    private DeviceMemory() {
    }

    /** A device allocation of at least {@code bytes()}; {@link #ensure} reallocates (contents lost) when too small. */
    static final class Device implements AutoCloseable {
        private CUdeviceptr pointer;
        private long bytes;

        CUdeviceptr pointer() {
            return pointer;
        }

        long bytes() {
            return bytes;
        }

        void ensure(long needed) {
            if (needed <= bytes) {
                return;
            }
            close();
            CUdeviceptr p = new CUdeviceptr();
            cuMemAlloc(p, Math.max(needed, 256));
            pointer = p;
            bytes = needed;
        }

        @Override
        public void close() {
            if (pointer != null) {
                cuMemFree(pointer);
                pointer = null;
                bytes = 0;
            }
        }
    }

    /** Pinned host memory, also seen as a {@link MemorySegment} so that segments copy into it directly. */
    static final class Pinned implements AutoCloseable {
        /** A ByteBuffer view is limited to 2 GiB; staging slots are far smaller. */
        static final long MAX_BYTES = Integer.MAX_VALUE & ~4095L;
        private Pointer pointer;
        private MemorySegment segment;
        private long bytes;

        Pointer pointer() {
            return pointer;
        }

        MemorySegment segment() {
            return segment;
        }

        long bytes() {
            return bytes;
        }

        void ensure(long needed) {
            if (needed <= bytes) {
                return;
            }
            if (needed > MAX_BYTES) {
                throw new IllegalArgumentException("a pinned staging buffer of " + needed + " bytes exceeds "
                        + MAX_BYTES + "; lower -Dflexstream.cuda.chunkBytes");
            }
            close();
            Pointer p = new Pointer();
            cuMemHostAlloc(p, needed, 0);
            pointer = p;
            segment = MemorySegment.ofBuffer(p.getByteBuffer(0, needed));
            bytes = needed;
        }

        @Override
        public void close() {
            if (pointer != null) {
                cuMemFreeHost(pointer);
                pointer = null;
                segment = null;
                bytes = 0;
            }
        }
    }
}
