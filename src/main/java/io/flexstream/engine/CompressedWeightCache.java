package io.flexstream.engine;

import io.flexstream.model.OptConfig;
import io.flexstream.model.OptLayerWeights;
import io.flexstream.model.OptWeights;
import io.flexstream.quant.QuantizedMatrix;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/**
 * A checkpoint's 4-bit decoder matrices cached on disk, so that {@code --compress-weight} quantizes a checkpoint once
 * and later starts map the result instead (quantizing OPT-1.3B's 1.2 billion weights takes tens of seconds; mapping
 * and checking the 0.7 GB cache file, about a second).
 *
 * <p><b>Where</b>: {@code <cacheDir>/<checkpoint dir name>-<8 hex of its absolute path>-q4g64.bin}; the cache
 * directory defaults to {@code .flexstream-cache} inside the checkpoint directory. If it cannot be written, the
 * layers are quantized in memory as without a cache, and a warning names the fix ({@code --weight-cache-dir}).
 *
 * <p><b>File format</b> (little-endian): a {@value #HEADER_BYTES}-byte header, then the payload: per decoder layer, per
 * matrix in the order q, k, v, out, fc1, fc2, its packed codes then its fp16 metadata exactly as
 * {@link QuantizedMatrix} lays them out in memory (groups of {@value DecoderWeights#GROUP} along the input
 * dimension). The header holds a magic, {@link #LAYOUT_VERSION}, the group size, the model geometry, the payload size,
 * the CRC32C of the payload and the SHA-256 of the checkpoint's identity: the name, size and modification time of
 * config.json and every safetensors file (and index) in the checkpoint directory.
 *
 * <p><b>Validity</b>: a file whose magic, version, group size, geometry, identity, length or checksum does not match is
 * stale or corrupt: a warning says which, and the file is rebuilt. A rebuild streams layer by layer into a temporary
 * file in the same directory and renames it over the old one atomically, so a crash mid-write never leaves a file
 * that looks valid, and concurrent starts at worst both rebuild.
 */
final class CompressedWeightCache implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(CompressedWeightCache.class);

    /** Bump when the payload layout (nibble order, metadata format, matrix order) changes. */
    static final int LAYOUT_VERSION = 1;
    static final int HEADER_BYTES = 4096; // page-aligned payload, so mapped matrices start aligned
    private static final long MAGIC = 0x3134_5751_5354_5846L; // "FXSTQW41" read as little-endian bytes
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path file;
    private final Arena arena;
    private final List<DecoderWeights> layers;
    private final int quantizedLayers;

    private CompressedWeightCache(Path file, Arena arena, List<DecoderWeights> layers, int quantizedLayers) {
        this.file = file;
        this.arena = arena;
        this.layers = layers;
        this.quantizedLayers = quantizedLayers;
    }

    /**
     * The compressed decoder layers of the checkpoint in {@code modelDir} (whose fp32 weights {@code weights} were
     * loaded from it): mapped from a valid cache file, else quantized from {@code weights} and cached.
     *
     * @param cacheDir where cache files live; null for {@code modelDir/.flexstream-cache}
     */
    static CompressedWeightCache open(Path modelDir, Path cacheDir, OptWeights weights) {
        Path dir = cacheDir != null ? cacheDir : modelDir.resolve(".flexstream-cache");
        Path abs = modelDir.toAbsolutePath().normalize();
        String name = (abs.getFileName() == null ? "model" : abs.getFileName().toString()) + "-"
                + HexFormat.of().toHexDigits(abs.toString().hashCode()) + "-q4g" + DecoderWeights.GROUP + ".bin";
        Path file = dir.resolve(name);
        byte[] identity = identity(modelDir);
        OptConfig c = weights.config();
        if (Files.exists(file)) {
            Arena arena = Arena.ofShared();
            try {
                String problem = validate(file, identity, c, arena);
                if (problem == null) {
                    return new CompressedWeightCache(file, arena, mapLayers(file, weights, arena), 0);
                }
                arena.close();
                LOG.warn("compressed weight cache {} is {}; rebuilding it", file, problem);
            } catch (IOException | RuntimeException e) {
                arena.close();
                LOG.warn("compressed weight cache {} cannot be read ({}); rebuilding it", file, e.toString());
            }
        }
        try {
            Files.createDirectories(dir);
            write(file, identity, weights);
        } catch (IOException | UncheckedIOException e) {
            LOG.warn("cannot write the compressed weight cache {} ({}): quantizing in memory, and again at the next "
                    + "start; point --weight-cache-dir at a writable directory to cache them", file, e.toString());
            Arena arena = Arena.ofShared();
            List<DecoderWeights> layers = weights.layers().stream()
                    .map(l -> DecoderWeights.quantize(l, c.hiddenSize(), c.ffnDim(), arena)).toList();
            return new CompressedWeightCache(null, arena, layers, layers.size());
        }
        Arena arena = Arena.ofShared();
        try {
            String problem = validate(file, identity, c, arena);
            if (problem != null) {
                throw new IllegalStateException("compressed weight cache " + file + " just written is " + problem);
            }
            return new CompressedWeightCache(file, arena, mapLayers(file, weights, arena), c.numLayers());
        } catch (IOException e) {
            arena.close();
            throw new UncheckedIOException("cannot map the compressed weight cache " + file, e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The decoder layers with their six matrices compressed (biases and LayerNorm from the fp32 weights). */
    List<DecoderWeights> layers() {
        return layers;
    }

    /** Layers quantized by this open: 0 when the cache was valid, every layer when it was (re)built. */
    int quantizedLayers() {
        return quantizedLayers;
    }

    /** The cache file, or null when it could not be written. */
    Path file() {
        return file;
    }

    /** Unmaps the file: the layers must no longer be used (the offloading engine has copied them into its tiers). */
    @Override
    public void close() {
        arena.close();
    }

    /** The six matrices' shapes in file order: {rows, cols}. */
    private static int[][] shapes(OptConfig c) {
        int h = c.hiddenSize();
        int f = c.ffnDim();
        return new int[][] {{h, h}, {h, h}, {h, h}, {h, h}, {f, h}, {h, f}};
    }

    private static long packedBytes(int rows, int cols) {
        int gpr = (cols + DecoderWeights.GROUP - 1) / DecoderWeights.GROUP;
        return (long) rows * gpr * (DecoderWeights.GROUP / 2);
    }

    private static long metadataBytes(int rows, int cols) {
        return (long) rows * ((cols + DecoderWeights.GROUP - 1) / DecoderWeights.GROUP) * 4;
    }

    static long payloadBytes(OptConfig c) {
        long perLayer = 0;
        for (int[] s : shapes(c)) {
            perLayer += packedBytes(s[0], s[1]) + metadataBytes(s[0], s[1]);
        }
        return perLayer * c.numLayers();
    }

    /**
     * SHA-256 over the name, size and modification time of config.json and the weight files: any change to the
     * checkpoint (a re-download, a conversion) changes it.
     */
    static byte[] identity(Path modelDir) {
        try (Stream<Path> files = Files.list(modelDir)) {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            List<Path> sorted = files.filter(p -> {
                String n = p.getFileName().toString();
                return n.equals("config.json") || n.endsWith(".safetensors") || n.endsWith(".safetensors.index.json");
            }).sorted().toList();
            for (Path p : sorted) {
                String line = p.getFileName() + " " + Files.size(p) + " "
                        + Files.getLastModifiedTime(p).toMillis() + "\n";
                sha.update(line.getBytes(StandardCharsets.UTF_8));
            }
            String format = "group " + DecoderWeights.GROUP + " layout " + LAYOUT_VERSION;
            sha.update(format.getBytes(StandardCharsets.UTF_8));
            return sha.digest();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list checkpoint " + modelDir + " to key its weight cache", e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    /** Null when the file is a valid cache of this checkpoint, else what is wrong with it. */
    private static String validate(Path file, byte[] identity, OptConfig c, Arena arena) throws IOException {
        long expected = HEADER_BYTES + payloadBytes(c);
        long size = Files.size(file);
        if (size < HEADER_BYTES) {
            return "truncated (" + size + " bytes, less than its header)";
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment header = ch.map(FileChannel.MapMode.READ_ONLY, 0, HEADER_BYTES, arena);
            if (header.get(LONG, 0) != MAGIC) {
                return "not a FlexStream weight cache (bad magic)";
            }
            int version = header.get(INT, 8);
            if (version != LAYOUT_VERSION) {
                return "stale (layout version " + version + ", this build uses " + LAYOUT_VERSION + ")";
            }
            if (header.get(INT, 12) != DecoderWeights.GROUP || header.get(INT, 16) != c.numLayers()
                    || header.get(INT, 20) != c.hiddenSize() || header.get(INT, 24) != c.ffnDim()) {
                return "stale (group size or model geometry differ)";
            }
            byte[] stored = header.asSlice(48, 32).toArray(ValueLayout.JAVA_BYTE);
            if (!MessageDigest.isEqual(stored, identity)) {
                return "stale (the checkpoint's files changed since it was written)";
            }
            if (size != expected || header.get(LONG, 32) != payloadBytes(c)) {
                return "truncated or overlong (" + size + " bytes, expected " + expected + ")";
            }
            MemorySegment payload = ch.map(FileChannel.MapMode.READ_ONLY, HEADER_BYTES, payloadBytes(c), arena);
            CRC32C crc = new CRC32C();
            crc.update(payload.asByteBuffer());
            if (crc.getValue() != header.get(LONG, 40)) {
                return "corrupt (payload checksum mismatch)";
            }
        }
        return null;
    }

    /** Quantizes every layer into a temporary file, layer by layer, then renames it to {@code file} atomically. */
    private static void write(Path file, byte[] identity, OptWeights weights) throws IOException {
        OptConfig c = weights.config();
        Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".tmp");
        try {
            CRC32C crc = new CRC32C();
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                long at = HEADER_BYTES;
                for (OptLayerWeights l : weights.layers()) {
                    try (Arena staging = Arena.ofConfined()) {
                        DecoderWeights q = DecoderWeights.quantize(l, c.hiddenSize(), c.ffnDim(), staging);
                        for (LinearWeight w : List.of(q.q(), q.k(), q.v(), q.out(), q.fc1(), q.fc2())) {
                            QuantizedMatrix m = ((LinearWeight.Quantized) w).weight();
                            at = writeFully(ch, m.packed(), at, crc);
                            at = writeFully(ch, m.metadata(), at, crc);
                        }
                    }
                }
                ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
                header.putLong(0, MAGIC).putInt(8, LAYOUT_VERSION).putInt(12, DecoderWeights.GROUP)
                        .putInt(16, c.numLayers()).putInt(20, c.hiddenSize()).putInt(24, c.ffnDim())
                        .putLong(32, payloadBytes(c)).putLong(40, crc.getValue()).put(48, identity);
                while (header.hasRemaining()) {
                    ch.write(header, header.position());
                }
                ch.force(true); // the rename must not land before the bytes do
            }
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static long writeFully(FileChannel ch, MemorySegment bytes, long at, CRC32C crc) throws IOException {
        ByteBuffer b = bytes.asByteBuffer();
        crc.update(b.duplicate());
        while (b.hasRemaining()) {
            at += ch.write(b, at);
        }
        return at;
    }

    /** The layers as views of the mapped payload, with the fp32 biases and LayerNorm parameters of {@code weights}. */
    private static List<DecoderWeights> mapLayers(Path file, OptWeights weights, Arena arena) throws IOException {
        OptConfig c = weights.config();
        MemorySegment payload;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            payload = ch.map(FileChannel.MapMode.READ_ONLY, HEADER_BYTES, payloadBytes(c), arena);
        }
        int[][] shapes = shapes(c);
        List<DecoderWeights> out = new ArrayList<>(c.numLayers());
        long at = 0;
        for (OptLayerWeights l : weights.layers()) {
            LinearWeight[] m = new LinearWeight[6];
            for (int i = 0; i < 6; i++) {
                int rows = shapes[i][0];
                int cols = shapes[i][1];
                MemorySegment packed = payload.asSlice(at, packedBytes(rows, cols));
                at += packed.byteSize();
                MemorySegment meta = payload.asSlice(at, metadataBytes(rows, cols));
                at += meta.byteSize();
                m[i] = new LinearWeight.Quantized(new QuantizedMatrix(rows, cols, DecoderWeights.GROUP, packed, meta));
            }
            out.add(new DecoderWeights(m[0], l.qBias(), m[1], l.kBias(), m[2], l.vBias(), m[3], l.outBias(),
                    l.attnLayerNormWeight(), l.attnLayerNormBias(), m[4], l.fc1Bias(), m[5], l.fc2Bias(),
                    l.finalLayerNormWeight(), l.finalLayerNormBias()));
        }
        return out;
    }
}
