package io.flexstream.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flexstream.tensor.DType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a safetensors file from fp32 tensors, narrowing each to the dtype it should be stored in. Mirrors Hugging
 * Face's writer: a {@code __metadata__} entry {@code {"format": "pt"}}, tensors laid out back to back in the order
 * added, and the JSON header padded with spaces to a multiple of 8 bytes so the data starts 8-byte aligned.
 *
 * <p>Tensors are held by reference until {@link #write}, so their segments must stay alive until then.
 */
public final class SafetensorsWriter {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ValueLayout.OfLong LONG_LE =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private record Pending(String name, DType dtype, long[] shape, MemorySegment f32) {
        long bytes() {
            return SafetensorsTensor.elementCount(shape) * dtype.bytes();
        }
    }

    private final List<Pending> tensors = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>(Map.of("format", "pt"));

    /**
     * Queues a tensor.
     *
     * @param f32 the values, fp32 in native byte order, at least as many as the shape holds
     */
    public SafetensorsWriter add(String name, DType dtype, long[] shape, MemorySegment f32) {
        long count = SafetensorsTensor.elementCount(shape);
        if (f32.byteSize() < count * 4) {
            throw new IllegalArgumentException("tensor " + name + " of shape " + Arrays.toString(shape) + " needs "
                    + count * 4 + " bytes of fp32, got " + f32.byteSize());
        }
        if (tensors.stream().anyMatch(p -> p.name.equals(name))) {
            throw new IllegalArgumentException("duplicate tensor " + name);
        }
        tensors.add(new Pending(name, dtype, shape.clone(), f32));
        return this;
    }

    /** Adds a string entry to {@code __metadata__}. */
    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** Bytes of tensor data queued so far (excluding the header). */
    public long dataBytes() {
        return tensors.stream().mapToLong(Pending::bytes).sum();
    }

    /** Writes the file, replacing any existing one, and returns its size in bytes. */
    public long write(Path file) {
        byte[] header = header();
        long total = 8 + header.length + dataBytes();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.READ, StandardOpenOption.WRITE);
             Arena arena = Arena.ofShared()) {
            MemorySegment out = ch.map(FileChannel.MapMode.READ_WRITE, 0, total, arena);
            out.set(LONG_LE, 0, header.length);
            MemorySegment.copy(header, 0, out, ValueLayout.JAVA_BYTE, 8, header.length);
            long offset = 8 + header.length;
            for (Pending p : tensors) {
                long bytes = p.bytes();
                Fp32Conversion.fromF32(p.dtype, p.f32, out.asSlice(offset, bytes),
                        SafetensorsTensor.elementCount(p.shape));
                offset += bytes;
            }
            out.force();
        } catch (IOException e) {
            throw new CheckpointException("cannot write " + file + ": " + e, e);
        }
        return total;
    }

    private byte[] header() {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("__metadata__", metadata);
        long offset = 0;
        for (Pending p : tensors) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("dtype", p.dtype.safetensorsName());
            entry.put("shape", p.shape);
            entry.put("data_offsets", new long[] {offset, offset + p.bytes()});
            json.put(p.name, entry);
            offset += p.bytes();
        }
        String text;
        try {
            text = JSON.writeValueAsString(json);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        byte[] raw = text.getBytes(StandardCharsets.UTF_8);
        int padded = (raw.length + 7) & ~7;
        byte[] out = Arrays.copyOf(raw, padded);
        Arrays.fill(out, raw.length, padded, (byte) ' ');
        return out;
    }
}
