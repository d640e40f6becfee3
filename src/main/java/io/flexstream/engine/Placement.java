package io.flexstream.engine;

import io.flexstream.tier.TierShares;

/**
 * What the offloading engine needs of a policy: the block shape, where each tensor class lives, where decode
 * attention runs, and which schedule walks the block.
 *
 * @param gpuBatchSize    sequences per GPU batch (one compute call)
 * @param numGpuBatches   GPU batches per block; one layer's weights serve the whole block
 * @param weights         weight shares per tier
 * @param cache           KV cache shares per tier (whole sequences)
 * @param activations     hidden-state shares per tier (whole sequences)
 * @param cpuCacheCompute decode attention runs where a host-resident cache lives instead of copying it to the device
 * @param schedule        block traversal
 */
public record Placement(int gpuBatchSize, int numGpuBatches, TierShares weights, TierShares cache,
                        TierShares activations, boolean cpuCacheCompute, ScheduleKind schedule) {

    public Placement {
        if (gpuBatchSize < 1) {
            throw new IllegalArgumentException("gpu batch size must be at least 1, got " + gpuBatchSize);
        }
        if (numGpuBatches < 1) {
            throw new IllegalArgumentException("number of gpu batches must be at least 1, got " + numGpuBatches);
        }
    }

    /** Everything on the device: the plain in-memory layout, walked by the block schedule. */
    public static Placement allDevice(int gpuBatchSize, int numGpuBatches) {
        return new Placement(gpuBatchSize, numGpuBatches, TierShares.ALL_DEVICE, TierShares.ALL_DEVICE,
                TierShares.ALL_DEVICE, false, ScheduleKind.ZIGZAG);
    }

    public int blockSize() {
        return gpuBatchSize * numGpuBatches;
    }

    public Placement withSchedule(ScheduleKind kind) {
        return new Placement(gpuBatchSize, numGpuBatches, weights, cache, activations, cpuCacheCompute, kind);
    }
}
