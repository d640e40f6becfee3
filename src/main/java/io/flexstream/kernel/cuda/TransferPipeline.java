package io.flexstream.kernel.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static jcuda.driver.JCudaDriver.cuStreamWaitEvent;

import java.lang.foreign.MemorySegment;
import java.util.List;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;

/**
 * Runs one kernel call over host-resident tensors as a three-stage pipeline of chunks (row ranges), on three
 * streams: uploads, compute, downloads. Two slots alternate, each a pinned staging buffer and a device buffer per
 * direction, so while chunk c computes, chunk c+1's input is copied by the host into pinned memory and then
 * uploaded, and chunk c-1's output is downloaded and copied out by the host. Events order the stages of one chunk
 * and guard the reuse of a slot two chunks later.
 *
 * <p>What overlaps, honestly: within one call, host staging, both copy directions and compute of different chunks.
 * Across calls nothing does: the {@code Kernels} contract returns results in host memory, so every call ends by
 * waiting for its last download. A call that fits one chunk (most decode-step calls) therefore runs its stages one
 * after the other.
 */
final class TransferPipeline implements AutoCloseable {

    /** One row range of a call. */
    interface Chunk {
        /** Input bytes this chunk stages (all of its inputs packed back to back). */
        long inBytes();

        /** Output bytes it produces. */
        long outBytes();

        /** Copies the chunk's inputs into {@code pinned} ({@link #inBytes} bytes). Runs on the host. */
        void stageIn(MemorySegment pinned);

        /** Enqueues the kernel(s) on {@code stream}, reading {@code in} and writing {@code out} on the device. */
        void launch(CUdeviceptr in, CUdeviceptr out, CUstream stream);

        /** Copies the chunk's outputs from {@code pinned} to their host tensors. Runs on the host. */
        void stageOut(MemorySegment pinned);
    }

    private final HostCopier copier;
    private final CUstream upload = stream();
    private final CUstream compute = stream();
    private final CUstream download = stream();
    private final DeviceMemory.Pinned[] pinnedIn = {new DeviceMemory.Pinned(), new DeviceMemory.Pinned()};
    private final DeviceMemory.Pinned[] pinnedOut = {new DeviceMemory.Pinned(), new DeviceMemory.Pinned()};
    private final DeviceMemory.Device[] deviceIn = {new DeviceMemory.Device(), new DeviceMemory.Device()};
    private final DeviceMemory.Device[] deviceOut = {new DeviceMemory.Device(), new DeviceMemory.Device()};
    private final CUevent[] uploaded = {event(), event()};
    private final CUevent[] computed = {event(), event()};
    private final CUevent[] downloaded = {event(), event()};
    private final CUevent weightsReady = event();

    /** Owns {@code copier}, which the chunks use for their host copies too. */
    TransferPipeline(HostCopier copier) {
        this.copier = copier;
    }

    HostCopier copier() {
        return copier;
    }

    /** Runs the chunks in order; returns when every output is in host memory. */
    void run(List<? extends Chunk> chunks) {
        long maxIn = 0;
        long maxOut = 0;
        for (Chunk c : chunks) {
            maxIn = Math.max(maxIn, c.inBytes());
            maxOut = Math.max(maxOut, c.outBytes());
        }
        // Only a weight upload of this call can still be in flight (reading pinnedIn); wait for it before growing.
        if (pinnedIn[0].bytes() < maxIn || pinnedOut[0].bytes() < maxOut || deviceIn[0].bytes() < maxIn
                || deviceOut[0].bytes() < maxOut) {
            synchronize();
        }
        for (int s = 0; s < 2; s++) {
            pinnedIn[s].ensure(maxIn);
            pinnedOut[s].ensure(maxOut);
            deviceIn[s].ensure(maxIn);
            deviceOut[s].ensure(maxOut);
        }
        for (int c = 0; c < chunks.size(); c++) {
            int s = c & 1;
            Chunk chunk = chunks.get(c);
            // pinnedIn[s] is free once the last upload that read it (chunk c-2, or a weight piece) is done.
            cuEventSynchronize(uploaded[s]);
            chunk.stageIn(pinnedIn[s].segment());
            if (c >= 2) {
                cuStreamWaitEvent(upload, computed[s], 0); // deviceIn[s] is free once chunk c-2 computed
            }
            if (chunk.inBytes() > 0) {
                cuMemcpyHtoDAsync(deviceIn[s].pointer(), pinnedIn[s].pointer(), chunk.inBytes(), upload);
            }
            cuEventRecord(uploaded[s], upload);
            cuStreamWaitEvent(compute, uploaded[s], 0);
            cuStreamWaitEvent(compute, weightsReady, 0);
            if (c >= 2) {
                cuStreamWaitEvent(compute, downloaded[s], 0); // deviceOut[s] is free once chunk c-2 downloaded
            }
            chunk.launch(deviceIn[s].pointer(), deviceOut[s].pointer(), compute);
            cuEventRecord(computed[s], compute);
            cuStreamWaitEvent(download, computed[s], 0);
            if (chunk.outBytes() > 0) {
                cuMemcpyDtoHAsync(pinnedOut[s].pointer(), deviceOut[s].pointer(), chunk.outBytes(), download);
            }
            cuEventRecord(downloaded[s], download);
            if (c >= 1) {
                finish(chunks.get(c - 1), (c - 1) & 1);
            }
        }
        if (!chunks.isEmpty()) {
            finish(chunks.getLast(), (chunks.size() - 1) & 1);
        }
    }

    private void finish(Chunk chunk, int slot) {
        cuEventSynchronize(downloaded[slot]);
        chunk.stageOut(pinnedOut[slot].segment());
    }

    /**
     * Uploads {@code bytes} of a host tensor to {@code target} through the two pinned input slots (the host fills one
     * while the copy engine drains the other); later compute waits for it. Used for weights on a cache miss.
     */
    void uploadWeight(MemorySegment source, long bytes, CUdeviceptr target, long slotBytes) {
        long piece = Math.max(4096, Math.min(bytes, slotBytes));
        if (pinnedIn[0].bytes() < piece) {
            cuStreamSynchronize(upload); // an earlier piece may still be reading the slot that grows
        }
        for (int s = 0; s < 2; s++) {
            pinnedIn[s].ensure(piece);
        }
        int index = 0;
        for (long at = 0; at < bytes; at += piece, index++) {
            int s = index & 1;
            long n = Math.min(piece, bytes - at);
            cuEventSynchronize(uploaded[s]);
            copier.copy(source, at, pinnedIn[s].segment(), 0, n);
            cuMemcpyHtoDAsync(target.withByteOffset(at), pinnedIn[s].pointer(), n, upload);
            cuEventRecord(uploaded[s], upload);
        }
        // Compute waits for this event; the host goes on staging the call's activations meanwhile.
        cuEventRecord(weightsReady, upload);
    }

    /** Waits for all three streams (used before freeing device memory a kernel may still read). */
    void synchronize() {
        cuStreamSynchronize(upload);
        cuStreamSynchronize(compute);
        cuStreamSynchronize(download);
    }

    @Override
    public void close() {
        synchronize();
        for (int s = 0; s < 2; s++) {
            pinnedIn[s].close();
            pinnedOut[s].close();
            deviceIn[s].close();
            deviceOut[s].close();
            cuEventDestroy(uploaded[s]);
            cuEventDestroy(computed[s]);
            cuEventDestroy(downloaded[s]);
        }
        cuEventDestroy(weightsReady);
        cuStreamDestroy(upload);
        cuStreamDestroy(compute);
        cuStreamDestroy(download);
        copier.close();
    }

    private static CUstream stream() {
        CUstream s = new CUstream();
        cuStreamCreate(s, CUstream_flags.CU_STREAM_NON_BLOCKING);
        return s;
    }

    private static CUevent event() {
        CUevent e = new CUevent();
        cuEventCreate(e, CUevent_flags.CU_EVENT_DISABLE_TIMING);
        return e;
    }
}
