package io.flexstream.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flexstream.tensor.DType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A memory-mapped safetensors file: an 8-byte little-endian header length n, n bytes of JSON (tensor name to dtype,
 * shape and data_offsets, plus an optional {@code __metadata__} entry this reader ignores), then the raw data.
 * data_offsets are [begin, end) in bytes relative to the first byte after the header.
 *
 * <p>The whole file is mapped once with {@link FileChannel#map(FileChannel.MapMode, long, long, Arena)}, which has
 * no 2 GiB limit, into a shared arena so that tensor slices can be read from any thread. Every tensor's offsets are
 * checked against the file size on open, so a truncated download fails here, naming the file and the tensor, rather
 * than as a fault deep inside a kernel.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** Hugging Face's reader refuses headers above 100 MB; a larger length means a corrupt or foreign file. */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ValueLayout.OfLong LONG_LE =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena ownedArena;
    private final Map<String, SafetensorsTensor> tensors;
    private final long fileBytes;

    private SafetensorsFile(Path path, Arena ownedArena, Map<String, SafetensorsTensor> tensors, long fileBytes) {
        this.path = path;
        this.ownedArena = ownedArena;
        this.tensors = tensors;
        this.fileBytes = fileBytes;
    }

    /** Maps {@code file} into its own shared arena, released by {@link #close()}. */
    public static SafetensorsFile open(Path file) {
        Arena arena = Arena.ofShared();
        try {
            return open(file, arena, arena);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Maps {@code file} into {@code arena}, which the caller owns (it must be shared or global for multi-threaded
     * readers); {@link #close()} then leaves the mapping alone.
     */
    public static SafetensorsFile open(Path file, Arena arena) {
        return open(file, arena, null);
    }

    private static SafetensorsFile open(Path file, Arena arena, Arena owned) {
        MemorySegment map;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            map = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
        } catch (NoSuchFileException e) {
            throw new CheckpointException("missing safetensors file " + file);
        } catch (IOException e) {
            throw new CheckpointException("cannot map " + file + ": " + e, e);
        }
        long size = map.byteSize();
        if (size < 8) {
            throw new CheckpointException("truncated file " + file + ": " + size
                    + " bytes, shorter than the 8-byte header length");
        }
        long headerLength = map.get(LONG_LE, 0);
        if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
            throw new CheckpointException("bad safetensors file " + file + ": header length " + headerLength
                    + " is outside [2, " + MAX_HEADER_BYTES + "]");
        }
        if (8 + headerLength > size) {
            throw new CheckpointException("truncated file " + file + ": header of " + headerLength
                    + " bytes does not fit in the " + size + "-byte file");
        }
        byte[] header = map.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE);
        return new SafetensorsFile(file, owned, parseHeader(file, header, map, 8 + headerLength), size);
    }

    private static Map<String, SafetensorsTensor> parseHeader(Path file, byte[] header, MemorySegment map,
                                                              long dataStart) {
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JsonProcessingException e) {
            throw new CheckpointException("bad safetensors header in " + file + ": " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new CheckpointException("cannot parse header of " + file + ": " + e, e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointException("bad safetensors header in " + file + ": expected a JSON object");
        }
        long dataBytes = map.byteSize() - dataStart;
        Map<String, SafetensorsTensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            String name = field.getKey();
            if (name.equals("__metadata__")) {
                continue;
            }
            JsonNode entry = field.getValue();
            String where = "tensor " + name + " in " + file;
            JsonNode dtypeNode = entry.get("dtype");
            if (dtypeNode == null || !dtypeNode.isTextual()) {
                throw new CheckpointException("bad safetensors header: " + where + " has no dtype");
            }
            DType dtype = DType.fromSafetensors(dtypeNode.textValue());
            if (dtype == null) {
                throw new CheckpointException("unsupported dtype " + dtypeNode.textValue() + " of " + where
                        + ": FlexStream reads F32, F16 and BF16");
            }
            long[] shape = longs(entry.get("shape"), -1, where, "shape");
            long[] offsets = longs(entry.get("data_offsets"), 2, where, "data_offsets");
            long begin = offsets[0];
            long end = offsets[1];
            if (begin > end) {
                throw new CheckpointException("bad safetensors header: " + where + " has data_offsets [" + begin
                        + ", " + end + "] with begin after end");
            }
            long expected;
            try {
                expected = Math.multiplyExact(SafetensorsTensor.elementCount(shape), dtype.bytes());
            } catch (ArithmeticException e) {
                throw new CheckpointException("bad safetensors header: " + where + " has an absurd shape");
            }
            if (end - begin != expected) {
                throw new CheckpointException("bad safetensors header: " + where + " spans " + (end - begin)
                        + " bytes but shape " + java.util.Arrays.toString(shape) + " of " + dtype + " needs "
                        + expected);
            }
            if (end > dataBytes) {
                throw new CheckpointException("truncated file " + file + ": tensor " + name + " needs data bytes ["
                        + begin + ", " + end + ") but only " + dataBytes + " follow the header");
            }
            out.put(name, new SafetensorsTensor(name, dtype, shape, map.asSlice(dataStart + begin, end - begin),
                    file));
        }
        return Collections.unmodifiableMap(out);
    }

    private static long[] longs(JsonNode node, int expectedLength, String where, String key) {
        if (node == null || !node.isArray() || (expectedLength >= 0 && node.size() != expectedLength)) {
            throw new CheckpointException("bad safetensors header: " + where + " has a malformed " + key + ": "
                    + node);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new CheckpointException("bad safetensors header: " + where + " has a malformed " + key + ": "
                        + node);
            }
            out[i] = v.longValue();
        }
        return out;
    }

    public Path path() {
        return path;
    }

    /** File size in bytes. */
    public long fileBytes() {
        return fileBytes;
    }

    /** Tensor names in header order. */
    public Set<String> names() {
        return tensors.keySet();
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    /** The tensor stored under exactly {@code name}. */
    public SafetensorsTensor tensor(String name) {
        SafetensorsTensor t = tensors.get(name);
        if (t == null) {
            throw new CheckpointException("missing tensor " + name + " in " + path);
        }
        return t;
    }

    /** Releases the mapping when this file owns its arena; slices must not be used afterwards. */
    @Override
    public void close() {
        if (ownedArena != null) {
            ownedArena.close();
        }
    }
}
