package io.flexstream.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Every tensor an OPT checkpoint holds for a given {@link OptConfig}: its canonical name (without the {@code model.}
 * prefix), its shape and its role. This one list drives loading (presence and shape checks), random initialisation
 * and checkpoint writing, so the three cannot disagree.
 *
 * <p>Shapes follow PyTorch: a linear layer's weight is [out_features, in_features]. project_in maps the
 * word_embed_proj_dim-wide embedding up to h, so it is [h, wepd]; project_out maps back down, [wepd, h].
 */
public final class OptTensorLayout {

    /** What a tensor is for; random initialisation picks its scale from this. */
    public enum Role { EMBEDDING, LINEAR_WEIGHT, BIAS, NORM_WEIGHT, NORM_BIAS }

    /**
     * One tensor.
     *
     * @param name  canonical name, e.g. "decoder.layers.0.fc1.weight" or "lm_head.weight"
     * @param shape dimensions in elements, outermost first
     * @param role  what the tensor is for
     * @param fanIn input width of a linear weight (its last dimension); 0 for other roles
     */
    public record Entry(String name, long[] shape, Role role, long fanIn) {
        public long elementCount() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        public String shapeString() {
            return Arrays.toString(shape);
        }
    }

    public static final String PREFIX = "model.";
    public static final String LM_HEAD = "lm_head.weight";

    private OptTensorLayout() {
    }

    /** Tensors in checkpoint order; {@code withLmHead} adds an untied lm_head.weight. */
    public static List<Entry> of(OptConfig c, boolean withLmHead) {
        long h = c.hiddenSize();
        long w = c.wordEmbedProjDim();
        long ffn = c.ffnDim();
        List<Entry> out = new ArrayList<>();
        out.add(new Entry("decoder.embed_tokens.weight", new long[] {c.vocabSize(), w}, Role.EMBEDDING, 0));
        out.add(new Entry("decoder.embed_positions.weight", new long[] {c.positionTableRows(), h}, Role.EMBEDDING, 0));
        if (c.hasProjection()) {
            out.add(linear("decoder.project_in.weight", h, w));
            out.add(linear("decoder.project_out.weight", w, h));
        }
        if (c.hasFinalLayerNorm()) {
            norm(out, c, "decoder.final_layer_norm", h);
        }
        for (int i = 0; i < c.numLayers(); i++) {
            String p = layerPrefix(i);
            for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
                out.add(linear(p + "self_attn." + proj + ".weight", h, h));
                bias(out, c, p + "self_attn." + proj + ".bias", h);
            }
            norm(out, c, p + "self_attn_layer_norm", h);
            out.add(linear(p + "fc1.weight", ffn, h));
            bias(out, c, p + "fc1.bias", ffn);
            out.add(linear(p + "fc2.weight", h, ffn));
            bias(out, c, p + "fc2.bias", h);
            norm(out, c, p + "final_layer_norm", h);
        }
        if (withLmHead) {
            out.add(new Entry(LM_HEAD, new long[] {c.vocabSize(), w}, Role.EMBEDDING, 0));
        }
        return out;
    }

    /** "decoder.layers.i." */
    public static String layerPrefix(int layer) {
        return "decoder.layers." + layer + ".";
    }

    /**
     * The name as an OPTForCausalLM checkpoint stores it: "model." + name, except lm_head.weight which sits outside
     * the decoder module.
     */
    public static String prefixed(String canonical) {
        return canonical.equals(LM_HEAD) ? canonical : PREFIX + canonical;
    }

    private static Entry linear(String name, long out, long in) {
        return new Entry(name, new long[] {out, in}, Role.LINEAR_WEIGHT, in);
    }

    private static void bias(List<Entry> out, OptConfig c, String name, long n) {
        if (c.enableBias()) {
            out.add(new Entry(name, new long[] {n}, Role.BIAS, 0));
        }
    }

    private static void norm(List<Entry> out, OptConfig c, String prefix, long n) {
        if (c.layerNormElementwiseAffine()) {
            out.add(new Entry(prefix + ".weight", new long[] {n}, Role.NORM_WEIGHT, 0));
            out.add(new Entry(prefix + ".bias", new long[] {n}, Role.NORM_BIAS, 0));
        }
    }
}
