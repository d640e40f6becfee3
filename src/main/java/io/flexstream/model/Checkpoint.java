package io.flexstream.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Hugging Face OPT checkpoint directory: config.json plus either {@code model.safetensors} or shards listed in
 * {@code model.safetensors.index.json}. All files are mapped on open into one shared arena that {@link #close()}
 * releases; tensor slices obtained from it must not be used after that.
 *
 * <p>Names resolve both ways: OPTForCausalLM checkpoints store "model.decoder.…", bare OPTModel ones "decoder.…", and
 * callers may ask with or without the prefix.
 */
public final class Checkpoint implements AutoCloseable {

    public static final String CONFIG = "config.json";
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";

    private final Path dir;
    private final OptConfig config;
    private final Arena arena;
    private final List<SafetensorsFile> files;
    /** Stored name to the file that holds it, in file and header order. */
    private final Map<String, SafetensorsFile> byName;

    private Checkpoint(Path dir, OptConfig config, Arena arena, List<SafetensorsFile> files,
                       Map<String, SafetensorsFile> byName) {
        this.dir = dir;
        this.config = config;
        this.arena = arena;
        this.files = files;
        this.byName = byName;
    }

    /**
     * Reads config.json and maps the weights of {@code dir}.
     *
     * @throws CheckpointException when config.json or the weights are missing or malformed
     */
    public static Checkpoint open(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException("checkpoint " + dir + " is not a directory");
        }
        OptConfig config = OptConfig.read(dir.resolve(CONFIG));
        Path single = dir.resolve(SINGLE_FILE);
        Path index = dir.resolve(INDEX);
        Arena arena = Arena.ofShared();
        try {
            List<SafetensorsFile> files = new ArrayList<>();
            Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
            if (Files.exists(index)) {
                Map<String, SafetensorsFile> opened = new LinkedHashMap<>();
                for (Map.Entry<String, String> e : weightMap(index).entrySet()) {
                    SafetensorsFile f = opened.get(e.getValue());
                    if (f == null) {
                        Path shard = dir.resolve(e.getValue());
                        if (!Files.exists(shard)) {
                            throw new CheckpointException("checkpoint " + dir + ": shard " + e.getValue()
                                    + " listed in " + INDEX + " is missing");
                        }
                        f = SafetensorsFile.open(shard, arena);
                        opened.put(e.getValue(), f);
                        files.add(f);
                    }
                    if (!f.has(e.getKey())) {
                        throw new CheckpointException("checkpoint " + dir + ": " + INDEX + " maps " + e.getKey()
                                + " to " + e.getValue() + ", which does not hold it");
                    }
                    byName.put(e.getKey(), f);
                }
            } else if (Files.exists(single)) {
                SafetensorsFile f = SafetensorsFile.open(single, arena);
                files.add(f);
                for (String name : f.names()) {
                    byName.put(name, f);
                }
            } else {
                throw new CheckpointException(missingWeightsMessage(dir));
            }
            return new Checkpoint(dir, config, arena, List.copyOf(files), Collections.unmodifiableMap(byName));
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static String missingWeightsMessage(Path dir) {
        String expected = "checkpoint " + dir + " has no " + SINGLE_FILE + " or " + INDEX;
        if (Files.exists(dir.resolve("pytorch_model.bin")) || Files.exists(dir.resolve("pytorch_model.bin.index.json"))) {
            return expected + "; it has only pytorch_model.bin, which FlexStream does not read: convert it to"
                    + " safetensors (e.g. transformers: model.save_pretrained(dir, safe_serialization=True))";
        }
        return expected + "; download the safetensors weights of the model (pytorch_model.bin-only checkpoints"
                + " must be converted to safetensors first)";
    }

    private static Map<String, String> weightMap(Path index) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readAllBytes(index));
        } catch (JsonProcessingException e) {
            throw new CheckpointException("bad JSON in " + index + ": " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new CheckpointException("cannot read " + index + ": " + e, e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new CheckpointException("bad index " + index + ": no weight_map object");
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            if (!e.getValue().isTextual()) {
                throw new CheckpointException("bad index " + index + ": weight_map entry " + e.getKey()
                        + " is not a file name");
            }
            out.put(e.getKey(), e.getValue().textValue());
        }
        return out;
    }

    public Path dir() {
        return dir;
    }

    public OptConfig config() {
        return config;
    }

    /** The mapped safetensors files (one, or the shards in index order). */
    public List<SafetensorsFile> files() {
        return files;
    }

    /** Names as stored, in file and header order. */
    public Set<String> tensorNames() {
        return byName.keySet();
    }

    /** Whether {@code name} (with or without the "model." prefix) is stored. */
    public boolean has(String name) {
        return resolve(name) != null;
    }

    /**
     * The tensor stored as {@code name}, "model." + name, or name without "model.".
     *
     * @throws CheckpointException "missing tensor …" naming the directory
     */
    public SafetensorsTensor tensor(String name) {
        String stored = resolve(name);
        if (stored == null) {
            throw new CheckpointException("checkpoint " + dir + ": missing tensor " + name);
        }
        return byName.get(stored).tensor(stored);
    }

    private String resolve(String name) {
        if (byName.containsKey(name)) {
            return name;
        }
        String other = name.startsWith(OptTensorLayout.PREFIX)
                ? name.substring(OptTensorLayout.PREFIX.length())
                : OptTensorLayout.PREFIX + name;
        return byName.containsKey(other) ? other : null;
    }

    /** Unmaps every file. */
    @Override
    public void close() {
        arena.close();
    }
}
