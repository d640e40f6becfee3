package io.flexstream.policy;

import io.flexstream.model.OptConfig;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The sizes of a decoder-only transformer that the cost model needs: nothing about its weights' values.
 *
 * <p>The policy package keeps its own shape (rather than the engine's model config) so that it can size models that
 * are not on this machine, e.g. OPT-175B on FlexGen's T4. The built-in shapes are the OPT family as FlexGen
 * configures it (vocabulary 50272, ffn = 4 x hidden, fp16). Sizes below are in BYTES of fp16 (2 bytes per element).
 *
 * @param name   a label, e.g. {@code opt-30b}
 * @param layers transformer layers (not counting embedding and head)
 * @param hidden hidden size h1
 * @param ffn    MLP inner size h2
 * @param heads  attention heads
 * @param vocab  vocabulary size (rows of the tied token embedding)
 */
public record ModelShape(String name, int layers, int hidden, int ffn, int heads, int vocab) {

    /** Position-table rows of OPT: max_seq_len 2048 plus OPT's offset of 2. */
    static final int OPT_POSITIONS = 2048 + 2;
    private static final int OPT_VOCAB = 50272;
    private static final Map<String, ModelShape> OPT = new LinkedHashMap<>();

    static {
        opt("opt-125m", 12, 768, 12);
        opt("opt-1.3b", 24, 2048, 32);
        opt("opt-2.7b", 32, 2560, 32);
        opt("opt-6.7b", 32, 4096, 32);
        opt("opt-13b", 40, 5120, 40);
        opt("opt-30b", 48, 7168, 56);
        opt("opt-66b", 64, 9216, 72);
        opt("opt-175b", 96, 12288, 96);
        OPT.put("galactica-30b", new ModelShape("galactica-30b", 48, 7168, 4 * 7168, 56, 50000));
    }

    private static void opt(String name, int layers, int hidden, int heads) {
        OPT.put(name, new ModelShape(name, layers, hidden, 4 * hidden, heads, OPT_VOCAB));
    }

    public ModelShape {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("model name must not be blank");
        if (layers <= 0 || hidden <= 0 || ffn <= 0 || heads <= 0 || vocab <= 0) {
            throw new IllegalArgumentException("model " + name + ": layers, hidden, ffn, heads and vocab must be positive"
                    + " (got " + layers + ", " + hidden + ", " + ffn + ", " + heads + ", " + vocab + ")");
        }
        if (hidden % heads != 0) {
            throw new IllegalArgumentException("model " + name + ": hidden " + hidden + " is not a multiple of heads " + heads);
        }
    }

    /** A built-in shape by name (case-insensitive; FlexGen's {@code -iml} suffixes map to the base model). */
    public static ModelShape named(String name) {
        String key = name.toLowerCase(Locale.ROOT).replaceFirst("^facebook/", "").replaceFirst("-iml(-max)?$", "");
        ModelShape shape = OPT.get(key);
        if (shape == null) {
            throw new IllegalArgumentException("unknown model '" + name + "'; built-in shapes: " + String.join(", ", OPT.keySet())
                    + " (or pass a checkpoint directory holding config.json)");
        }
        return shape;
    }

    /** The names {@link #named} accepts. */
    public static Iterable<String> builtInNames() {
        return OPT.keySet();
    }

    /** The shape of an engine model config (a checkpoint's config.json, or one of the model package's presets). */
    public static ModelShape of(String name, OptConfig c) {
        return new ModelShape(name, c.numLayers(), c.hiddenSize(), c.ffnDim(), c.numHeads(), c.vocabSize());
    }

    /**
     * Reads a Hugging Face OPT checkpoint's {@code config.json} (the directory or the file itself) through the model
     * package's reader, which names the file and key of anything wrong.
     */
    public static ModelShape fromConfig(Path dirOrFile) {
        boolean dir = Files.isDirectory(dirOrFile);
        Path file = dir ? dirOrFile.resolve("config.json") : dirOrFile;
        String name = dir ? String.valueOf(dirOrFile.toAbsolutePath().normalize().getFileName()) : String.valueOf(file);
        return of(name, OptConfig.read(file));
    }

    /** Elements per head. */
    public int headDim() {
        return hidden / heads;
    }

    /**
     * FlexGen's cost-model weight bytes of one layer, fp16: 2 x (4 h1^2 attention + 2 h1 h2 MLP) = 8 h1^2 + 4 h1 h2.
     * Biases and LayerNorm parameters are left out, as in FlexGen's cost model (they are < 0.1% of the layer).
     */
    public double layerWeightBytes() {
        double h1 = hidden;
        return 8 * h1 * h1 + 4 * h1 * ffn;
    }

    /**
     * All parameter bytes in fp16: per layer q,k,v,out (4 h^2 + 4 h), fc1 (h h2 + h2), fc2 (h2 h + h), two LayerNorms
     * (4 h); plus token embedding (tied head), position table and final LayerNorm.
     */
    public double modelBytes() {
        double h = hidden;
        double perLayer = 4 * h * h + 4 * h + 2 * h * ffn + ffn + h + 4 * h;
        return 2 * (layers * perLayer + (double) vocab * h + OPT_POSITIONS * h + 2 * h);
    }

    /** KV-cache bytes of {@code batch} sequences of {@code tokens} positions, all layers, fp16 (K and V). */
    public double cacheBytes(long batch, long tokens) {
        return 2.0 * batch * tokens * layers * hidden * 2;
    }

    /** Hidden-state bytes of {@code batch} x {@code tokens} positions, fp16. */
    public double hiddenBytes(long batch, long tokens) {
        return 2.0 * batch * tokens * hidden;
    }
}
