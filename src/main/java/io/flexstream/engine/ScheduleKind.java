package io.flexstream.engine;

/** How a block of GPU batches is walked. */
public enum ScheduleKind {
    /**
     * FlexGen's zig-zag block schedule: for each token step, for each layer, for each GPU batch. One load of a
     * layer's weights serves every batch of the block.
     */
    ZIGZAG,
    /**
     * Row by row, as Hugging Face Accelerate and DeepSpeed run: one batch through every token step and layer, then
     * the next batch. Weights are loaded again for every batch.
     */
    ROW
}
