package io.flexstream.model;

import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The weights of one decoder layer, each a row-major fp32 array in native byte order (see {@code Kernels}). Linear
 * weights are [out, in]: q/k/v/out are [h, h], fc1 is [ffn, h], fc2 is [h, ffn]. Biases are null when
 * enable_bias=false; LayerNorm gamma/beta are null when layer_norm_elementwise_affine=false.
 *
 * <p>{@code attnLayerNorm*} is Hugging Face's self_attn_layer_norm (LN₁), {@code finalLayerNorm*} the layer's own
 * final_layer_norm (LN₂, before fc1 in pre-LN models), not the decoder's.
 */
public record OptLayerWeights(MemorySegment qWeight, MemorySegment qBias,
                              MemorySegment kWeight, MemorySegment kBias,
                              MemorySegment vWeight, MemorySegment vBias,
                              MemorySegment outWeight, MemorySegment outBias,
                              MemorySegment attnLayerNormWeight, MemorySegment attnLayerNormBias,
                              MemorySegment fc1Weight, MemorySegment fc1Bias,
                              MemorySegment fc2Weight, MemorySegment fc2Bias,
                              MemorySegment finalLayerNormWeight, MemorySegment finalLayerNormBias) {

    /** Builds layer {@code i} from tensors looked up by canonical name (null for an absent optional tensor). */
    static OptLayerWeights from(int i, Function<String, MemorySegment> get) {
        String p = OptTensorLayout.layerPrefix(i);
        return new OptLayerWeights(
                get.apply(p + "self_attn.q_proj.weight"), get.apply(p + "self_attn.q_proj.bias"),
                get.apply(p + "self_attn.k_proj.weight"), get.apply(p + "self_attn.k_proj.bias"),
                get.apply(p + "self_attn.v_proj.weight"), get.apply(p + "self_attn.v_proj.bias"),
                get.apply(p + "self_attn.out_proj.weight"), get.apply(p + "self_attn.out_proj.bias"),
                get.apply(p + "self_attn_layer_norm.weight"), get.apply(p + "self_attn_layer_norm.bias"),
                get.apply(p + "fc1.weight"), get.apply(p + "fc1.bias"),
                get.apply(p + "fc2.weight"), get.apply(p + "fc2.bias"),
                get.apply(p + "final_layer_norm.weight"), get.apply(p + "final_layer_norm.bias"));
    }

    /** Canonical name (with the "decoder.layers.i." prefix) to tensor, absent ones left out. */
    Map<String, MemorySegment> byName(int i) {
        String p = OptTensorLayout.layerPrefix(i);
        Map<String, MemorySegment> m = new LinkedHashMap<>();
        put(m, p + "self_attn.q_proj.weight", qWeight);
        put(m, p + "self_attn.q_proj.bias", qBias);
        put(m, p + "self_attn.k_proj.weight", kWeight);
        put(m, p + "self_attn.k_proj.bias", kBias);
        put(m, p + "self_attn.v_proj.weight", vWeight);
        put(m, p + "self_attn.v_proj.bias", vBias);
        put(m, p + "self_attn.out_proj.weight", outWeight);
        put(m, p + "self_attn.out_proj.bias", outBias);
        put(m, p + "self_attn_layer_norm.weight", attnLayerNormWeight);
        put(m, p + "self_attn_layer_norm.bias", attnLayerNormBias);
        put(m, p + "fc1.weight", fc1Weight);
        put(m, p + "fc1.bias", fc1Bias);
        put(m, p + "fc2.weight", fc2Weight);
        put(m, p + "fc2.bias", fc2Bias);
        put(m, p + "final_layer_norm.weight", finalLayerNormWeight);
        put(m, p + "final_layer_norm.bias", finalLayerNormBias);
        return m;
    }

    private static void put(Map<String, MemorySegment> m, String name, MemorySegment s) {
        if (s != null) {
            m.put(name, s);
        }
    }
}
