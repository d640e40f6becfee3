package io.flexstream.model;

import io.flexstream.tensor.DType;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * One tensor of a safetensors file.
 *
 * @param name  the name as stored in the header
 * @param dtype element type of the raw data
 * @param shape dimensions in elements, outermost first (do not modify)
 * @param data  the raw little-endian bytes, a slice of the file mapping: valid while the file's arena is open
 * @param file  the file it lives in, for error messages
 */
public record SafetensorsTensor(String name, DType dtype, long[] shape, MemorySegment data, Path file) {

    public long elementCount() {
        return elementCount(shape);
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}
