package io.flexstream.model;

import io.flexstream.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsTest {

    @TempDir
    Path dir;

    /** A raw safetensors file: 8-byte LE length, the header verbatim, then {@code dataBytes} zero bytes. */
    static Path rawFile(Path file, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Files.write(file, b.array());
        return file;
    }

    static MemorySegment randomF32(Arena arena, long count, long seed) {
        MemorySegment s = arena.allocate(count * 4, 4);
        SplittableRandom r = new SplittableRandom(seed);
        for (long i = 0; i < count; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (r.nextGaussian() * 3));
        }
        return s;
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void roundTripsOddShapesInEveryDtype(DType dtype) {
        List<long[]> shapes = List.of(new long[] {3, 5, 7}, new long[] {1}, new long[] {13, 1}, new long[] {},
                new long[] {0, 4}, new long[] {2, 3, 1, 5});
        Path file = dir.resolve("t.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter();
            MemorySegment[] values = new MemorySegment[shapes.size()];
            for (int i = 0; i < shapes.size(); i++) {
                values[i] = randomF32(arena, Math.max(1, SafetensorsTensor.elementCount(shapes.get(i))), i);
                w.add("t" + i, dtype, shapes.get(i), values[i]);
            }
            long size = w.write(file);
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                assertEquals(size, f.fileBytes());
                assertEquals(List.of("t0", "t1", "t2", "t3", "t4", "t5"), List.copyOf(f.names()));
                for (int i = 0; i < shapes.size(); i++) {
                    SafetensorsTensor t = f.tensor("t" + i);
                    assertEquals(dtype, t.dtype());
                    assertArrayEquals(shapes.get(i), t.shape());
                    assertEquals(t.elementCount() * dtype.bytes(), t.data().byteSize());
                    for (long j = 0; j < t.elementCount(); j++) {
                        float expected = values[i].getAtIndex(ValueLayout.JAVA_FLOAT, j);
                        float rounded = switch (dtype) {
                            case F32 -> expected;
                            case F16 -> Float.float16ToFloat(Float.floatToFloat16(expected));
                            case BF16 -> bf16(expected);
                        };
                        assertEquals(rounded, dtype.read(t.data(), j), "t" + i + "[" + j + "]");
                    }
                }
            }
        }
    }

    /** Reference bf16 rounding (nearest even) via double arithmetic on the bit pattern. */
    private static float bf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        int lower = bits & 0xffff;
        int upper = bits & 0xffff0000;
        if (lower > 0x8000 || (lower == 0x8000 && (upper & 0x10000) != 0)) {
            upper += 0x10000;
        }
        return Float.intBitsToFloat(upper);
    }

    @Test
    void headerIsPaddedToEightBytesAndCarriesFormatMetadata() throws IOException {
        Path file = dir.resolve("p.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            new SafetensorsWriter().add("a", DType.F16, new long[] {3}, randomF32(arena, 3, 1)).write(file);
        }
        byte[] bytes = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLength % 8);
        assertEquals(8 + headerLength + 6, bytes.length);
        String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"}"), header);
    }

    @Test
    void metadataIsIgnoredAndWhitespaceAccepted() throws IOException {
        Path file = rawFile(dir.resolve("m.safetensors"), """
                { "__metadata__" : {"format": "pt", "note": "x"},
                  "w" : {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]} }   \s""", 8);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("w"), List.copyOf(f.names()));
            assertEquals(0f, DType.F32.read(f.tensor("w").data(), 1));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"I8", "F64", "U8", "BOOL"})
    void unknownDtypeNamesDtypeTensorAndFile(String dtype) throws IOException {
        Path file = rawFile(dir.resolve("d.safetensors"),
                "{\"w\":{\"dtype\":\"" + dtype + "\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file));
        assertEquals("unsupported dtype " + dtype + " of tensor w in " + file + ": FlexStream reads F32, F16 and BF16",
                e.getMessage());
    }

    @Test
    void truncatedDataNamesFileAndTensor() throws IOException {
        Path file = dir.resolve("cut.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            new SafetensorsWriter()
                    .add("first", DType.F32, new long[] {4, 4}, randomF32(arena, 16, 1))
                    .add("second", DType.F32, new long[] {4, 4}, randomF32(arena, 16, 2))
                    .write(file);
        }
        byte[] whole = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(whole, whole.length - 10));
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().startsWith("truncated file " + file + ": tensor second"), e.getMessage());

        Files.write(file, java.util.Arrays.copyOf(whole, 20));
        e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().startsWith("truncated file " + file + ": header of"), e.getMessage());

        Files.write(file, new byte[5]);
        e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().startsWith("truncated file " + file + ": 5 bytes"), e.getMessage());
    }

    @Test
    void malformedHeadersAreRejectedNamingTheFile() throws IOException {
        String[] bad = {
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}",      // span too short for the shape
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",      // begin after end
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",     // negative dimension
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}",                              // no offsets
                "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}",                          // no dtype
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]",        // bad JSON
                "[1, 2]",                                                                   // not an object
        };
        for (String header : bad) {
            Path file = rawFile(dir.resolve("bad.safetensors"), header, 8);
            CheckpointException e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file), header);
            assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        }
    }

    @Test
    void absurdHeaderLengthIsRejected() throws IOException {
        Path file = dir.resolve("len.safetensors");
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE);
        Files.write(file, b.array());
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains("header length"), e.getMessage());
    }

    @Test
    void slicesAreReadableFromOtherThreads() throws Exception {
        Path file = dir.resolve("mt.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            new SafetensorsWriter().add("w", DType.F32, new long[] {4}, randomF32(arena, 4, 3)).write(file);
        }
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            float here = DType.F32.read(f.tensor("w").data(), 2);
            float[] there = new float[1];
            Thread t = Thread.ofPlatform().start(() -> there[0] = DType.F32.read(f.tensor("w").data(), 2));
            t.join();
            assertEquals(here, there[0]);
        }
    }
}
