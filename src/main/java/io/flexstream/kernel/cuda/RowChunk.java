package io.flexstream.kernel.cuda;

import java.lang.foreign.MemorySegment;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;

/**
 * A chunk of a row-wise call: rows [first, first + count) of an input whose rows are {@code inRow} bytes apart, each
 * producing {@code outRow} bytes. The input rows are contiguous, so staging is one (split) copy.
 */
record RowChunk(long first, int count, long inRow, long outRow, MemorySegment in, HostCopier copier, Launch body,
                Sink sink) implements TransferPipeline.Chunk {

    /** Enqueues a kernel over device buffers for one chunk of {@code rows} rows (or elements). */
    interface Launch {
        void launch(CUdeviceptr in, CUdeviceptr out, int rows, CUstream stream);
    }

    /** Copies a chunk's output from pinned memory to wherever the caller wants it. */
    interface Sink {
        void take(MemorySegment pinned, long firstRow, int rows);
    }

    @Override
    public long inBytes() {
        return count * inRow;
    }

    @Override
    public long outBytes() {
        return count * outRow;
    }

    @Override
    public void stageIn(MemorySegment pinned) {
        copier.copy(in, first * inRow, pinned, 0, count * inRow);
    }

    @Override
    public void launch(CUdeviceptr deviceIn, CUdeviceptr deviceOut, CUstream stream) {
        body.launch(deviceIn, deviceOut, count, stream);
    }

    @Override
    public void stageOut(MemorySegment pinned) {
        sink.take(pinned, first, count);
    }
}
