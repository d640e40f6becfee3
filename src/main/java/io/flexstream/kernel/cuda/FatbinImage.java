package io.flexstream.kernel.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The kernels' fatbin as the jar carries it ({@value #RESOURCE}), with its table of contents: which GPU architectures
 * it holds SASS for and whether PTX is present. Used to load the module and, without a GPU, to check the build.
 *
 * <p>The fatbin container is undocumented; this reads the layout nvcc 13.0 writes (checked against its output): a
 * 16-byte header (magic {@code 0xBA55ED50}, version, header size, payload size, little-endian), then entries, each a
 * header of its own (kind at byte 0: 1 = PTX, 2 = ELF/SASS; header size at 4; payload size at 8; the architecture as
 * {@code major * 10 + minor} at 28) followed by its payload. nvcc stores PTX zstd-compressed (the payload starts with
 * the zstd magic), SASS as a plain ELF cubin whose symbol table names the kernels. A layout this class does not
 * recognise is an error, never a guess.
 */
public record FatbinImage(byte[] bytes, List<Entry> entries) {

    /** The classpath resource the build puts the fatbin at. */
    public static final String RESOURCE = "/io/flexstream/kernel/cuda/flexstream_kernels.fatbin";

    private static final int MAGIC = 0xBA55ED50;
    private static final int ZSTD_MAGIC = 0xFD2FB528;

    /** What an entry holds. */
    public enum Kind { PTX, SASS }

    /**
     * @param kind       PTX or SASS (an ELF cubin)
     * @param arch       compute capability as major * 10 + minor, e.g. 90
     * @param offset     payload offset in the fatbin, bytes
     * @param size       payload size, bytes
     * @param compressed whether the payload is zstd-compressed
     */
    public record Entry(Kind kind, int arch, int offset, int size, boolean compressed) {
    }

    /** The fatbin shipped on the classpath. */
    public static FatbinImage fromClasspath() {
        try (InputStream in = FatbinImage.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("the CUDA kernels' fatbin " + RESOURCE + " is missing from the "
                        + "classpath: rebuild with Maven, which copies native/flexstream_kernels.fatbin into the jar");
            }
            return parse(in.readAllBytes());
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + RESOURCE + ": " + e.getMessage(), e);
        }
    }

    /** Parses a fatbin; throws IllegalArgumentException naming what does not match the expected layout. */
    public static FatbinImage parse(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 16 || b.getInt(0) != MAGIC) {
            throw new IllegalArgumentException("not a fatbin: no magic 0xBA55ED50 at byte 0");
        }
        int headerSize = Short.toUnsignedInt(b.getShort(6));
        long payload = b.getLong(8);
        if (headerSize < 16 || headerSize + payload > bytes.length) {
            throw new IllegalArgumentException("fatbin header says " + headerSize + " + " + payload
                    + " bytes but the file has " + bytes.length);
        }
        List<Entry> entries = new ArrayList<>();
        long end = headerSize + payload;
        int at = headerSize;
        while (at < end) {
            if (at + 32 > end) {
                throw new IllegalArgumentException("truncated fatbin entry header at byte " + at);
            }
            int kindCode = Short.toUnsignedInt(b.getShort(at));
            int entryHeader = b.getInt(at + 4);
            long size = b.getLong(at + 8);
            int arch = b.getInt(at + 28);
            Kind kind = switch (kindCode) {
                case 1 -> Kind.PTX;
                case 2 -> Kind.SASS;
                default -> throw new IllegalArgumentException(
                        "unknown fatbin entry kind " + kindCode + " at byte " + at);
            };
            long start = (long) at + entryHeader;
            if (entryHeader < 32 || size < 0 || start + size > end) {
                throw new IllegalArgumentException("fatbin entry at byte " + at + " overruns the file");
            }
            boolean compressed = size >= 4 && b.getInt((int) start) == ZSTD_MAGIC;
            entries.add(new Entry(kind, arch, (int) start, (int) size, compressed));
            at = (int) (start + size);
        }
        return new FatbinImage(bytes, List.copyOf(entries));
    }

    /** Whether SASS for exactly this architecture (e.g. 90) is present. */
    public boolean hasSass(int arch) {
        return entries.stream().anyMatch(e -> e.kind == Kind.SASS && e.arch == arch);
    }

    /** Whether PTX for this virtual architecture (e.g. 90) is present. */
    public boolean hasPtx(int arch) {
        return entries.stream().anyMatch(e -> e.kind == Kind.PTX && e.arch == arch);
    }

    /**
     * Whether the SASS entry for {@code arch} names {@code symbol} in its string tables (a NUL-terminated match, so
     * "fs_add" does not match inside "fs_address").
     */
    public boolean sassDefines(int arch, String symbol) {
        byte[] needle = (symbol + "\0").getBytes(StandardCharsets.US_ASCII);
        for (Entry e : entries) {
            if (e.kind != Kind.SASS || e.arch != arch || e.compressed) {
                continue;
            }
            for (int i = e.offset + 1; i + needle.length <= e.offset + e.size; i++) {
                // Preceded by a NUL (start of a string-table entry) or '.' (section names like .text.fs_add).
                if ((bytes[i - 1] == 0 || bytes[i - 1] == '.') && matches(i, needle)) {
                    return true;
                }
            }
        }
        return false;
    }

    private boolean matches(int at, byte[] needle) {
        for (int j = 0; j < needle.length; j++) {
            if (bytes[at + j] != needle[j]) {
                return false;
            }
        }
        return true;
    }

    /** "sass sm_80, ptx compute_90 (compressed), sass sm_90". */
    public String describe() {
        List<String> parts = new ArrayList<>();
        for (Entry e : entries) {
            parts.add((e.kind == Kind.SASS ? "sass sm_" : "ptx compute_") + e.arch
                    + (e.compressed ? " (compressed)" : ""));
        }
        return String.join(", ", parts);
    }
}
