package io.flexstream.engine;

/** How the offloading engine stores weights in its tiers and moves them between tiers. */
public enum WeightFormat {
    /** fp32 as computed. */
    FP32,
    /**
     * IEEE fp16 in every tier, widened to fp32 as a layer is loaded into the device tier's working buffer (FlexGen's
     * storage precision; the CPU backend computes in fp32). Half the bytes of fp32 on every transfer.
     */
    FP16,
    /**
     * FlexGen's 4-bit group-wise compression (--compress-weight) of the decoder matrices and of the tied token
     * table / output head; biases, LayerNorm parameters and position embeddings stay fp32.
     */
    INT4
}
