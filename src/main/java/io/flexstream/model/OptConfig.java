package io.flexstream.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.flexstream.tensor.DType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The hyper-parameters of an OPT model, as Hugging Face's {@code config.json} states them (see docs/OPT.md).
 *
 * <p>Invariants checked on construction: every dimension is positive, {@code hiddenSize} is a multiple of
 * {@code numHeads}, and the activation is relu (the only one OPT checkpoints use and the only one the engine
 * implements).
 *
 * @param hiddenSize                 h, width of the residual stream
 * @param numLayers                  decoder layers L
 * @param numHeads                   attention heads; head dim is h / numHeads
 * @param ffnDim                     inner width of the feed-forward block
 * @param vocabSize                  rows of the token embedding (50272 for the released models)
 * @param maxPositionEmbeddings      longest sequence; the position table has this many rows plus 2 (OPT's offset)
 * @param wordEmbedProjDim           width of the token embedding; differs from h only in opt-350m (512), where
 *                                   project_in / project_out map between the two
 * @param doLayerNormBefore          true for pre-LN (all OPT models but opt-350m)
 * @param activationFunction         always "relu"
 * @param enableBias                 linear layers carry biases
 * @param layerNormElementwiseAffine LayerNorms carry gamma and beta
 * @param bosTokenId                 id of the beginning-of-sequence token (OPT uses {@code </s>}, 2)
 * @param eosTokenId                 id of the end-of-sequence token (2)
 * @param padTokenId                 id of the padding token (1)
 * @param torchDtype                 dtype the checkpoint was saved in ("float16", "float32", "bfloat16"); informative
 */
public record OptConfig(int hiddenSize, int numLayers, int numHeads, int ffnDim, int vocabSize,
                        int maxPositionEmbeddings, int wordEmbedProjDim, boolean doLayerNormBefore,
                        String activationFunction, boolean enableBias, boolean layerNormElementwiseAffine,
                        int bosTokenId, int eosTokenId, int padTokenId, String torchDtype) {

    /** Defaults Hugging Face's OPTConfig uses for keys missing from config.json. */
    public static final int DEFAULT_VOCAB_SIZE = 50272;
    public static final int DEFAULT_MAX_POSITIONS = 2048;
    public static final String RELU = "relu";

    /** Released checkpoints (facebook/opt-*), in size order: name, h, L, heads, ffn. */
    private static final List<Preset> PRESETS = List.of(
            new Preset("opt-125m", 768, 12, 12, 3072),
            new Preset("opt-350m", 1024, 24, 16, 4096),
            new Preset("opt-1.3b", 2048, 24, 32, 8192),
            new Preset("opt-2.7b", 2560, 32, 32, 10240),
            new Preset("opt-6.7b", 4096, 32, 32, 16384),
            new Preset("opt-13b", 5120, 40, 40, 20480),
            new Preset("opt-30b", 7168, 48, 56, 28672),
            new Preset("opt-66b", 9216, 64, 72, 36864),
            new Preset("opt-175b", 12288, 96, 96, 49152));

    private record Preset(String name, int hidden, int layers, int heads, int ffn) {
    }

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public OptConfig {
        requirePositive("hidden_size", hiddenSize);
        requirePositive("num_hidden_layers", numLayers);
        requirePositive("num_attention_heads", numHeads);
        requirePositive("ffn_dim", ffnDim);
        requirePositive("vocab_size", vocabSize);
        requirePositive("max_position_embeddings", maxPositionEmbeddings);
        requirePositive("word_embed_proj_dim", wordEmbedProjDim);
        if (hiddenSize % numHeads != 0) {
            throw new IllegalArgumentException("hidden_size " + hiddenSize + " is not divisible by num_attention_heads "
                    + numHeads);
        }
        if (!RELU.equals(activationFunction)) {
            throw new IllegalArgumentException("unsupported activation_function " + activationFunction
                    + ": FlexStream supports relu (the activation of every OPT checkpoint)");
        }
        if (torchDtype == null) {
            torchDtype = "float32";
        }
    }

    private static void requirePositive(String key, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(key + " must be positive, got " + value);
        }
    }

    /** Width of one attention head, h / numHeads. */
    public int headDim() {
        return hiddenSize / numHeads;
    }

    /** Whether project_in / project_out exist (word_embed_proj_dim differs from hidden_size). */
    public boolean hasProjection() {
        return wordEmbedProjDim != hiddenSize;
    }

    /** Whether decoder.final_layer_norm exists: Hugging Face creates it only for pre-LN models. */
    public boolean hasFinalLayerNorm() {
        return doLayerNormBefore;
    }

    /** Rows of decoder.embed_positions: OPT offsets positions by 2, so the table has two rows more. */
    public int positionTableRows() {
        return maxPositionEmbeddings + 2;
    }

    /** Number of parameters, counting a tied lm_head once (as the released models are). */
    public long parameterCount() {
        long count = 0;
        for (OptTensorLayout.Entry e : OptTensorLayout.of(this, false)) {
            count += e.elementCount();
        }
        return count;
    }

    /** Parameters of one decoder layer (attention, both LayerNorms, feed-forward); the unit the engine streams. */
    public long layerParameterCount() {
        String first = OptTensorLayout.layerPrefix(0);
        long count = 0;
        for (OptTensorLayout.Entry e : OptTensorLayout.of(this, false)) {
            if (e.name().startsWith(first)) {
                count += e.elementCount();
            }
        }
        return count;
    }

    /** Bytes of all weights stored as {@code dtype} (tied lm_head counted once), e.g. for memory budgets. */
    public long weightBytes(DType dtype) {
        return parameterCount() * dtype.bytes();
    }

    /** The same model with another torch_dtype string (what config.json records of the stored precision). */
    public OptConfig withTorchDtype(String dtype) {
        return new OptConfig(hiddenSize, numLayers, numHeads, ffnDim, vocabSize, maxPositionEmbeddings,
                wordEmbedProjDim, doLayerNormBefore, activationFunction, enableBias, layerNormElementwiseAffine,
                bosTokenId, eosTokenId, padTokenId, dtype);
    }

    /** The same model in post-LN form with the given word_embed_proj_dim, i.e. the opt-350m architecture. */
    /** The same shape with another number of decoder layers (benchmarks shorten big models this way). */
    public OptConfig withNumLayers(int layers) {
        return new OptConfig(hiddenSize, layers, numHeads, ffnDim, vocabSize, maxPositionEmbeddings,
                wordEmbedProjDim, doLayerNormBefore, activationFunction, enableBias, layerNormElementwiseAffine,
                bosTokenId, eosTokenId, padTokenId, torchDtype);
    }

    public OptConfig withPostLayerNorm(int wordEmbedProjDim) {
        return new OptConfig(hiddenSize, numLayers, numHeads, ffnDim, vocabSize, maxPositionEmbeddings,
                wordEmbedProjDim, false, activationFunction, enableBias, layerNormElementwiseAffine,
                bosTokenId, eosTokenId, padTokenId, torchDtype);
    }

    /** A small pre-LN model for tests and demos: ffn = 4·hidden, 2048 positions, OPT's special token ids. */
    public static OptConfig tiny(int hidden, int layers, int heads, int vocab) {
        return custom(hidden, layers, heads, 4 * hidden, vocab, DEFAULT_MAX_POSITIONS, hidden, true);
    }

    /** Any OPT-shaped model with biases, affine LayerNorms, relu and OPT's special token ids. */
    public static OptConfig custom(int hidden, int layers, int heads, int ffn, int vocab, int maxPositions,
                                   int wordEmbedProjDim, boolean preLayerNorm) {
        return new OptConfig(hidden, layers, heads, ffn, vocab, maxPositions, wordEmbedProjDim, preLayerNorm, RELU,
                true, true, 2, 2, 1, "float32");
    }

    /**
     * The shape of a released OPT model ("opt-125m" or "facebook/opt-125m"), with vocab 50272 and 2048 positions.
     * opt-350m is the odd one: post-LN, word_embed_proj_dim 512 (so project_in/out exist) and no final LayerNorm.
     */
    public static OptConfig shape(String name) {
        String bare = name.startsWith("facebook/") ? name.substring("facebook/".length()) : name;
        for (Preset p : PRESETS) {
            if (p.name.equalsIgnoreCase(bare)) {
                boolean is350m = p.name.equals("opt-350m");
                return new OptConfig(p.hidden, p.layers, p.heads, p.ffn, DEFAULT_VOCAB_SIZE, DEFAULT_MAX_POSITIONS,
                        is350m ? 512 : p.hidden, !is350m, RELU, true, true, 2, 2, 1, "float16");
            }
        }
        throw new IllegalArgumentException("unknown OPT model " + name + "; known: " + knownShapes());
    }

    /** Names {@link #shape} accepts, smallest first. */
    public static List<String> knownShapes() {
        return PRESETS.stream().map(Preset::name).toList();
    }

    /**
     * Reads a Hugging Face config.json. hidden_size, num_hidden_layers, num_attention_heads and ffn_dim are required
     * (a file without them is almost certainly not an OPT config); the other keys default as in docs/OPT.md.
     *
     * @throws CheckpointException naming the file for a missing file, bad JSON, a wrong model_type or a bad value
     */
    public static OptConfig read(Path configJson) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(configJson));
        } catch (NoSuchFileException e) {
            throw new CheckpointException("missing " + configJson + ": a checkpoint directory needs config.json");
        } catch (JsonProcessingException e) {
            throw new CheckpointException("bad JSON in " + configJson + ": " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new CheckpointException("cannot read " + configJson + ": " + e, e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointException("bad JSON in " + configJson + ": expected an object");
        }
        JsonNode modelType = root.get("model_type");
        if (modelType == null || !"opt".equals(modelType.asText())) {
            String found = modelType == null ? "(no model_type)" : modelType.asText();
            throw new CheckpointException("unsupported architecture " + found + " in " + configJson
                    + ": FlexStream supports model_type opt");
        }
        Keys keys = new Keys(root, configJson);
        int hidden = keys.requiredInt("hidden_size");
        try {
            return new OptConfig(hidden,
                    keys.requiredInt("num_hidden_layers"),
                    keys.requiredInt("num_attention_heads"),
                    keys.requiredInt("ffn_dim"),
                    keys.optionalInt("vocab_size", DEFAULT_VOCAB_SIZE),
                    keys.optionalInt("max_position_embeddings", DEFAULT_MAX_POSITIONS),
                    keys.optionalInt("word_embed_proj_dim", hidden),
                    keys.optionalBoolean("do_layer_norm_before", true),
                    keys.optionalString("activation_function", RELU),
                    keys.optionalBoolean("enable_bias", true),
                    keys.optionalBoolean("layer_norm_elementwise_affine", true),
                    keys.optionalInt("bos_token_id", 2),
                    keys.optionalInt("eos_token_id", 2),
                    keys.optionalInt("pad_token_id", 1),
                    // transformers 4.56 renamed torch_dtype to dtype; accept either.
                    keys.optionalString("torch_dtype", keys.optionalString("dtype", "float32")));
        } catch (IllegalArgumentException e) {
            throw new CheckpointException("invalid config " + configJson + ": " + e.getMessage(), e);
        }
    }

    /** Writes config.json with Hugging Face's key names, as OPTForCausalLM's save_pretrained would. */
    public void write(Path configJson) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("architectures", List.of("OPTForCausalLM"));
        json.put("model_type", "opt");
        json.put("hidden_size", hiddenSize);
        json.put("num_hidden_layers", numLayers);
        json.put("num_attention_heads", numHeads);
        json.put("ffn_dim", ffnDim);
        json.put("vocab_size", vocabSize);
        json.put("max_position_embeddings", maxPositionEmbeddings);
        json.put("word_embed_proj_dim", wordEmbedProjDim);
        json.put("do_layer_norm_before", doLayerNormBefore);
        json.put("activation_function", activationFunction);
        json.put("enable_bias", enableBias);
        json.put("layer_norm_elementwise_affine", layerNormElementwiseAffine);
        json.put("bos_token_id", bosTokenId);
        json.put("eos_token_id", eosTokenId);
        json.put("pad_token_id", padTokenId);
        json.put("torch_dtype", torchDtype);
        try {
            JSON.writeValue(configJson.toFile(), json);
        } catch (IOException e) {
            throw new CheckpointException("cannot write " + configJson + ": " + e, e);
        }
    }

    /** Typed access to config.json keys with errors naming the key and the file. */
    private record Keys(JsonNode root, Path file) {
        int requiredInt(String key) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                throw new CheckpointException("missing required key " + key + " in " + file);
            }
            return asInt(key, n);
        }

        int optionalInt(String key, int fallback) {
            JsonNode n = root.get(key);
            return n == null || n.isNull() ? fallback : asInt(key, n);
        }

        boolean optionalBoolean(String key, boolean fallback) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                return fallback;
            }
            if (!n.isBoolean()) {
                throw new CheckpointException("key " + key + " in " + file + " must be true or false, got " + n);
            }
            return n.booleanValue();
        }

        String optionalString(String key, String fallback) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                return fallback;
            }
            if (!n.isTextual()) {
                throw new CheckpointException("key " + key + " in " + file + " must be a string, got " + n);
            }
            return n.textValue();
        }

        private int asInt(String key, JsonNode n) {
            if (!n.isIntegralNumber() || !n.canConvertToInt()) {
                throw new CheckpointException("key " + key + " in " + file + " must be an integer, got " + n);
            }
            return n.intValue();
        }
    }
}
