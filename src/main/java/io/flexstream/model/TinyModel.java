package io.flexstream.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.flexstream.model.tokenizer.OptVocabularyWriter;
import io.flexstream.tensor.DType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a complete, Hugging Face-shaped OPT checkpoint directory with random weights: config.json,
 * generation_config.json, safetensors weights and the tokenizer files. The weights are exactly
 * {@link OptWeights#random} for the same config and seed, rounded to the chosen dtype, so
 * {@code OptWeights.load(Checkpoint.open(dir), arena)} reproduces them; that is what lets the demo and the tests run
 * the real loading path without downloading a model.
 */
public final class TinyModel {

    /**
     * How the weights are laid out on disk.
     *
     * @param writeLmHead store an untied lm_head.weight (its own random values, distinct from embed_tokens) instead
     *                    of relying on tying
     * @param modelPrefix store names as OPTForCausalLM does ("model.decoder.…") rather than bare ("decoder.…")
     * @param shards      1 for model.safetensors; more for model-0000i-of-0000n.safetensors plus an index
     */
    public record Options(boolean writeLmHead, boolean modelPrefix, int shards) {
        public Options {
            if (shards < 1) {
                throw new IllegalArgumentException("shards must be at least 1, got " + shards);
            }
        }

        /** Tied lm_head, "model." prefix, one file: what save_pretrained writes for the released models. */
        public static Options defaults() {
            return new Options(false, true, 1);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private TinyModel() {
    }

    /** Writes a checkpoint with {@link Options#defaults()}, tokenizer files included. */
    public static void write(Path dir, OptConfig config, long seed, DType dtype) {
        write(dir, config, seed, dtype, Options.defaults());
    }

    /** Writes config, weights and the tokenizer files (an OPT vocabulary of config.vocabSize() ids). */
    public static void write(Path dir, OptConfig config, long seed, DType dtype, Options options) {
        // Checked before any file is written, so a bad size leaves no half-made directory behind.
        if (config.vocabSize() < OptVocabularyWriter.MIN_VOCAB_SIZE) {
            throw new IllegalArgumentException("vocab_size " + config.vocabSize() + " is too small for a tokenizer:"
                    + " at least " + OptVocabularyWriter.MIN_VOCAB_SIZE + " (4 specials and 256 byte tokens)");
        }
        writeWeights(dir, config, seed, dtype, options);
        try {
            OptVocabularyWriter.write(dir, config.vocabSize());
        } catch (IOException e) {
            throw new CheckpointException("cannot write the tokenizer files to " + dir + ": " + e, e);
        }
    }

    /** Writes config.json, generation_config.json and the safetensors weights only (no tokenizer). */
    public static void writeWeights(Path dir, OptConfig config, long seed, DType dtype, Options options) {
        OptConfig stored = config.withTorchDtype(torchName(dtype));
        try {
            Files.createDirectories(dir);
            stored.write(dir.resolve(Checkpoint.CONFIG));
            Map<String, Object> generation = new LinkedHashMap<>();
            generation.put("bos_token_id", config.bosTokenId());
            generation.put("eos_token_id", config.eosTokenId());
            generation.put("pad_token_id", config.padTokenId());
            JSON.writeValue(dir.resolve("generation_config.json").toFile(), generation);
        } catch (IOException e) {
            throw new CheckpointException("cannot write " + dir + ": " + e, e);
        }
        try (Arena arena = Arena.ofShared()) {
            Map<String, MemorySegment> tensors = new LinkedHashMap<>(OptWeights.random(config, seed, arena).tensors());
            if (options.writeLmHead()) {
                OptTensorLayout.Entry head = OptTensorLayout.of(config, true).getLast();
                MemorySegment values = arena.allocate(head.elementCount() * Float.BYTES, OptWeights.ALIGNMENT);
                RandomInit.fill(config, head, seed, values);
                tensors.put(head.name(), values);
            }
            List<OptTensorLayout.Entry> layout = OptTensorLayout.of(config, options.writeLmHead());
            writeShards(dir, layout, tensors, dtype, options);
        }
    }

    /** Splits the tensors, in layout order, into {@code shards} runs of roughly equal bytes. */
    private static void writeShards(Path dir, List<OptTensorLayout.Entry> layout, Map<String, MemorySegment> tensors,
                                    DType dtype, Options options) {
        int n = options.shards();
        long total = layout.stream().mapToLong(e -> e.elementCount() * dtype.bytes()).sum();
        List<SafetensorsWriter> writers = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            writers.add(new SafetensorsWriter());
        }
        Map<String, String> weightMap = new LinkedHashMap<>();
        long written = 0;
        for (OptTensorLayout.Entry e : layout) {
            // Shard index grows with the bytes already assigned, so every shard gets about total / n.
            int shard = (int) Math.min(n - 1, written * n / Math.max(1, total));
            String name = options.modelPrefix() ? OptTensorLayout.prefixed(e.name()) : e.name();
            writers.get(shard).add(name, dtype, e.shape(), tensors.get(e.name()));
            weightMap.put(name, shardName(shard, n));
            written += e.elementCount() * dtype.bytes();
        }
        if (n == 1) {
            writers.getFirst().write(dir.resolve(Checkpoint.SINGLE_FILE));
            return;
        }
        for (int i = 0; i < n; i++) {
            writers.get(i).write(dir.resolve(shardName(i, n)));
        }
        Map<String, Object> index = new LinkedHashMap<>();
        index.put("metadata", Map.of("total_size", total));
        index.put("weight_map", weightMap);
        try {
            JSON.writeValue(dir.resolve(Checkpoint.INDEX).toFile(), index);
        } catch (IOException ex) {
            throw new CheckpointException("cannot write " + dir.resolve(Checkpoint.INDEX) + ": " + ex, ex);
        }
    }

    private static String shardName(int shard, int n) {
        return n == 1 ? Checkpoint.SINGLE_FILE : String.format("model-%05d-of-%05d.safetensors", shard + 1, n);
    }

    /** config.json's torch_dtype for a storage type. */
    static String torchName(DType dtype) {
        return switch (dtype) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
        };
    }
}
