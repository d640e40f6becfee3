package io.flexstream.cli;

import io.flexstream.kernel.CpuKernels;
import io.flexstream.policy.HardwareProfile;
import io.flexstream.tier.DiskTier;
import io.flexstream.tier.MemoryTier;
import io.flexstream.tier.Sizes;
import io.flexstream.tier.TierKind;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.function.LongSupplier;

/**
 * {@code flexstream profile}: measures the constants of the cost model on this machine with the engine's own
 * kernels and transfer paths (tier-to-tier copies, the O_DIRECT disk tier, the backend's linear and attention), and
 * writes a hardware profile for {@code flexstream policy --hardware FILE}. On the CPU backend the device tier is a
 * budgeted region of host memory, so device-host links are memory copies.
 */
@Command(name = "profile", mixinStandardHelpOptions = true,
        description = "Measure this machine's bandwidths and compute rates for the policy search (under a minute).")
public final class ProfileCommand implements Callable<Integer> {

    @Option(names = "--output", defaultValue = "hardware-profile.json",
            description = "Profile file to write (default: ${DEFAULT-VALUE}).")
    Path output;

    @Option(names = "--name", defaultValue = "measured-cpu", description = "Profile name (default: ${DEFAULT-VALUE}).")
    String name;

    @Option(names = "--offload-dir", defaultValue = "flexstream-offload",
            description = "Directory on the disk to measure (default: ${DEFAULT-VALUE}).")
    Path offloadDir;

    @Option(names = "--device-mem", defaultValue = "4g", description = "Device tier capacity to record "
            + "(default: ${DEFAULT-VALUE}).")
    String deviceMem;

    @Option(names = "--host-mem", defaultValue = "16g", description = "Host tier capacity to record "
            + "(default: ${DEFAULT-VALUE}).")
    String hostMem;

    @Option(names = "--disk-mem", defaultValue = "256g", description = "Disk tier capacity to record "
            + "(default: ${DEFAULT-VALUE}).")
    String diskMem;

    @Option(names = "--hidden", defaultValue = "2048",
            description = "Hidden size of the matrix shapes measured (default: ${DEFAULT-VALUE}).")
    int hidden;

    @Override
    public Integer call() throws Exception {
        System.err.println("profile: " + MachineInfo.describe());
        long copyBytes = 256L << 20;
        MemoryTier device = new MemoryTier(TierKind.DEVICE, copyBytes);
        MemoryTier host = new MemoryTier(TierKind.HOST, copyBytes);
        double hostToDevice;
        double deviceToHost;
        try (MemoryTier.Buffer d = device.allocate(copyBytes, "profile");
             MemoryTier.Buffer h = host.allocate(copyBytes, "profile")) {
            step("[1/6] host -> device copies");
            hostToDevice = rate(copyBytes, () -> time(() -> MemorySegment.copy(h.segment(), 0, d.segment(), 0,
                    copyBytes)));
            step("[2/6] device -> host copies");
            deviceToHost = rate(copyBytes, () -> time(() -> MemorySegment.copy(d.segment(), 0, h.segment(), 0,
                    copyBytes)));
        }
        double prefill;
        double decode;
        double stream;
        double attentionPrefill;
        double attentionDecode;
        DiskRates disk;
        try (CpuKernels kernels = new CpuKernels()) {
            step("[3/6] linear at prefill and decode shapes with " + kernels.name());
            prefill = linearFlops(kernels, 1024, hidden, hidden);
            decode = linearFlops(kernels, 32, 4 * hidden, hidden);
            // One input row: the time is the weight read; bytes of weights per second. The matrix is 256 MiB so
            // that it streams from memory as a model's layers do, not from the last-level cache.
            int streamRows = (int) ((256L << 20) / (4L * hidden));
            stream = linearFlops(kernels, 1, streamRows, hidden) / 2 * 4;
            step("[4/6] attention at prefill and decode shapes");
            attentionPrefill = attentionFlops(kernels, 4, 256, 256);
            attentionDecode = attentionFlops(kernels, 32, 1, 512);
            disk = diskRates(kernels);
        }
        // The engine reads weights from disk while it computes, so the rate that predicts it is the loaded one: on
        // VMs whose disk I/O needs CPU time the two differ (e.g. 2 cores: 0.6 GB/s quiet, 0.34 GB/s computing).
        HardwareProfile profile = new HardwareProfile(name,
                String.format(java.util.Locale.ROOT, "measured by flexstream profile on %s (CPU backend, fp32); "
                        + "disk re-read %.2f GB/s quiet, %.2f GB/s while computing (the latter is diskToHost); "
                        + "small O_DIRECT request %.0f us read, %.0f us write, %.1f us per read %d at once",
                        MachineInfo.describe(), disk.read / 1e9, disk.readComputing / 1e9, disk.readRequest * 1e6,
                        disk.writeRequest * 1e6, disk.batchReadRequest * 1e6, SMALL_REQUESTS),
                Sizes.parse(deviceMem), Sizes.parse(hostMem), Sizes.parse(diskMem),
                hostToDevice, deviceToHost, deviceToHost, disk.readComputing, disk.write, disk.write, disk.write,
                prefill, decode, attentionPrefill, attentionDecode, attentionDecode, 0, 0, 0,
                decode / 2, stream, disk.readRequest, disk.writeRequest, disk.batchReadRequest);
        profile.write(output);
        System.out.printf("host->device %.1f GB/s, device->host %.1f GB/s, disk re-read %.2f GB/s (%.2f GB/s while "
                        + "computing), disk write %.2f GB/s, small disk request %.0f us read / %.0f us write / %.1f us "
                        + "per read %d at once, linear %.1f / %.1f GFLOP/s (prefill / decode), weight stream %.1f "
                        + "GB/s, attention %.1f / %.1f GFLOP/s%n",
                hostToDevice / 1e9, deviceToHost / 1e9, disk.read / 1e9, disk.readComputing / 1e9, disk.write / 1e9,
                disk.readRequest * 1e6, disk.writeRequest * 1e6, disk.batchReadRequest * 1e6, SMALL_REQUESTS,
                prefill / 1e9, decode / 1e9, stream / 1e9,
                attentionPrefill / 1e9, attentionDecode / 1e9);
        System.out.println("wrote " + output + " (use: flexstream policy --hardware " + output
                + " --element-bytes 4 ...)");
        return 0;
    }

    private static void step(String what) {
        System.err.println("profile: " + what);
    }

    /**
     * What the disk tier does for the engine: bytes per second of large writes and of re-reads (quiet and while the
     * kernels compute), seconds per small request.
     */
    private record DiskRates(double write, double read, double readComputing, double readRequest,
                             double writeRequest, double batchReadRequest) {
    }

    /**
     * The disk tier's rates as the engine meets them. The engine keeps its disk-resident weights in one file per layer
     * (a disk tier region each), writes them once and then re-reads every file, one call per layer, every token
     * step for the whole run. This does the same with {@link #DISK_FILES} layer-sized files and reports the rate of
     * the re-reads, not of the first reads after writing. On the 2-core development VM (virtio disk, O_DIRECT, load
     * 2-4) that rate was about 0.6 GB/s in some runs and 2.1-2.8 GB/s in others minutes apart, with the same code
     * (the slow value 0.58-0.62 GB/s in seven runs; a 45 s sustained re-read of 16 such files, 39 GB, ran at
     * 0.8-1.0 GB/s throughout, so it is neither a warm-up nor a burst allowance; the cause is outside the guest and
     * was not found); data content, file size (112 MiB to 1.8 GiB) and request size made no difference. A profile
     * catches one state; several files at least sample the state as the engine's layer files meet it. The files are
     * then re-read while the kernels compute, as the engine prefetches during compute; that rate is the profile's
     * diskToHost. Last, small requests: 4 KiB aligned reads and writes, the size
     * of the engine's per-token KV cache I/O (DiskCacheRequests in the policy package counts them), whose time is
     * latency, not bandwidth: one at a time (the engine's stores) and all at once on the reader pool (its loads).
     */
    private DiskRates diskRates(CpuKernels kernels) throws InterruptedException {
        DiskTier disk = new DiskTier(offloadDir, DISK_FILES * DISK_FILE_BYTES, true);
        MemoryTier staging = new MemoryTier(TierKind.HOST, DISK_FILE_BYTES);
        List<DiskTier.Region> files = new ArrayList<>();
        try (MemoryTier.Buffer buffer = staging.allocate(DISK_FILE_BYTES, "profile")) {
            for (int i = 0; i < DISK_FILES; i++) {
                files.add(disk.allocate(DISK_FILE_BYTES, "profile layer " + i));
            }
            // Weights, not zeros: what the engine writes.
            fill(buffer.segment());
            step("[5/6] disk tier (O_DIRECT): layer-sized files written and re-read; small requests");
            long all = DISK_FILES * DISK_FILE_BYTES;
            double write = rate(all, () -> time(() -> files.forEach(f -> f.write(0, buffer.segment(), 0, f.bytes()))));
            double read = rate(all, () -> time(() -> files.forEach(f -> f.read(0, buffer.segment(), 0, f.bytes()))));
            DiskTier.Region first = files.getFirst();
            double readRequest = 1 / rate(1, () -> time(() -> smallRequests(first, buffer, false))) / SMALL_REQUESTS;
            double writeRequest = 1 / rate(1, () -> time(() -> smallRequests(first, buffer, true))) / SMALL_REQUESTS;
            double batchReadRequest = 1 / rate(1, () -> time(() -> smallReadsAtOnce(first, buffer)))
                    / SMALL_REQUESTS;
            if (!disk.direct()) {
                System.err.println("profile: WARNING O_DIRECT unavailable in " + offloadDir
                        + ": disk rates include the page cache");
            }
            step("[6/6] disk tier re-reads while the kernels compute");
            double readComputing = whileComputing(kernels, () -> rate(all, () -> time(() ->
                    files.forEach(f -> f.read(0, buffer.segment(), 0, f.bytes())))));
            return new DiskRates(write, read, readComputing, readRequest, writeRequest, batchReadRequest);
        } finally {
            files.forEach(DiskTier.Region::close);
            disk.close();
        }
    }

    /** Layer-sized files, more than a small model has layers (see {@link #diskRates}). */
    private static final int DISK_FILES = 16;
    /** Bytes per file, one read or write call each: about one layer of a small model (OPT-125M fp32: 28 MiB). */
    private static final long DISK_FILE_BYTES = 32L << 20;
    /** Small requests per timed run. */
    private static final int SMALL_REQUESTS = 256;

    /** {@link #SMALL_REQUESTS} 4 KiB aligned requests at spread-out offsets, one at a time as the engine issues them. */
    private static void smallRequests(DiskTier.Region region, MemoryTier.Buffer buffer, boolean write) {
        long block = DiskTier.BLOCK;
        long stride = smallRequestStride(region);
        for (int i = 0; i < SMALL_REQUESTS; i++) {
            if (write) {
                region.write(i * stride, buffer.segment(), 0, block);
            } else {
                region.read(i * stride, buffer.segment(), 0, block);
            }
        }
    }

    /** Block-aligned distance between the small requests, spreading them over the whole region. */
    private static long smallRequestStride(DiskTier.Region region) {
        return region.bytes() / SMALL_REQUESTS / DiskTier.BLOCK * DiskTier.BLOCK;
    }

    /**
     * The same {@link #SMALL_REQUESTS} reads issued together through the reader pool, as the engine loads the
     * disk-resident KV cache of a GPU batch's sequences ({@link DiskTier.Region#readAll}).
     */
    private static void smallReadsAtOnce(DiskTier.Region region, MemoryTier.Buffer buffer) {
        long block = DiskTier.BLOCK;
        long stride = smallRequestStride(region);
        long[] offsets = new long[SMALL_REQUESTS];
        long[] dstOffsets = new long[SMALL_REQUESTS];
        long[] lengths = new long[SMALL_REQUESTS];
        for (int i = 0; i < SMALL_REQUESTS; i++) {
            offsets[i] = i * stride;
            dstOffsets[i] = i * block;
            lengths[i] = block;
        }
        region.readAll(offsets, buffer.segment(), dstOffsets, lengths);
    }

    /** Runs {@code measurement} while a decode-shaped linear runs in a loop on the kernels' threads. */
    private double whileComputing(CpuKernels kernels, java.util.function.DoubleSupplier measurement)
            throws InterruptedException {
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread computing = Thread.ofPlatform().daemon().name("profile-load").start(() -> {
            int m = 32;
            try (MemoryTier.Buffer x = scratch((long) m * hidden); MemoryTier.Buffer w = scratch(4L * hidden * hidden);
                 MemoryTier.Buffer out = scratch(4L * m * hidden)) {
                fill(x.segment());
                fill(w.segment());
                while (!stop.get()) {
                    kernels.linear(x.segment(), w.segment(), null, out.segment(), m, 4 * hidden, hidden);
                }
            }
        });
        try {
            return measurement.getAsDouble();
        } finally {
            stop.set(true);
            computing.join();
        }
    }

    private static double linearFlops(CpuKernels kernels, int m, int n, int k) {
        try (MemoryTier.Buffer x = scratch((long) m * k); MemoryTier.Buffer w = scratch((long) n * k);
             MemoryTier.Buffer out = scratch((long) m * n)) {
            fill(x.segment());
            fill(w.segment());
            return rate(2.0 * m * n * k, () -> time(() -> kernels.linear(x.segment(), w.segment(), null,
                    out.segment(), m, n, k)));
        }
    }

    private double attentionFlops(CpuKernels kernels, int batch, int qLen, int kvLen) {
        int heads = Math.max(1, hidden / 64);
        long qBytes = (long) batch * qLen * hidden;
        long cacheBytes = (long) batch * kvLen * hidden;
        try (MemoryTier.Buffer q = scratch(qBytes); MemoryTier.Buffer kc = scratch(cacheBytes);
             MemoryTier.Buffer vc = scratch(cacheBytes); MemoryTier.Buffer valid = scratch((long) batch * kvLen);
             MemoryTier.Buffer out = scratch(qBytes)) {
            fill(q.segment());
            fill(kc.segment());
            fill(vc.segment());
            valid.segment().fill((byte) 0);
            for (long i = 0; i < (long) batch * kvLen; i++) {
                valid.segment().setAtIndex(ValueLayout.JAVA_FLOAT, i, 1f);
            }
            double flops = 4.0 * batch * hidden * (qLen == 1 ? kvLen : (double) qLen * (qLen + 1) / 2);
            return rate(flops, () -> time(() -> kernels.attention(q.segment(), kc.segment(), vc.segment(),
                    valid.segment(), out.segment(), batch, qLen, kvLen, kvLen, heads, hidden / heads)));
        }
    }

    private static MemoryTier.Buffer scratch(long floats) {
        return new MemoryTier(TierKind.HOST, floats * 4).allocate(floats * 4, "profile");
    }

    private static void fill(MemorySegment segment) {
        SplittableRandom random = new SplittableRandom(1);
        for (long i = 0; i < segment.byteSize() / 4; i++) {
            segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (random.nextDouble() - 0.5));
        }
    }

    /**
     * Work units per second: the median of five samples after at least a second of warm-up runs, each sample as
     * many runs as fill {@link #SAMPLE_NANOS}. A small shape's first calls run code the JIT has not compiled yet (C2
     * compiles a path only after many calls), which measured the decode-shaped linear at a third of its steady rate
     * with two warm-up calls. A run longer than a sample (the disk's) is a sample by itself. When every sample was
     * one run, the five samples of a decode-shaped linear (1-2 ms each) spanned about 10 ms, and one slow burst of
     * the shared host set the profile's decode rate: 32 GFLOP/s in a profile whose runs decoded at 80-110, so the
     * policy check predicted the decode 2.7x too long (bench policy, 2026-11-27).
     */
    private static double rate(double work, LongSupplier nanosOfOneRun) {
        long warmedNanos = 0;
        for (int runs = 0; runs < 3 || warmedNanos < 1_000_000_000L; runs++) {
            warmedNanos += nanosOfOneRun.getAsLong();
        }
        double[] rates = new double[5];
        for (int i = 0; i < rates.length; i++) {
            long nanos = 0;
            int runs = 0;
            while (runs == 0 || nanos < SAMPLE_NANOS) {
                nanos += nanosOfOneRun.getAsLong();
                runs++;
            }
            rates[i] = work * runs / (nanos / 1e9);
        }
        Arrays.sort(rates);
        return rates[rates.length / 2];
    }

    /** Least wall time of one rate sample: long enough that a burst on the shared host is one part of it. */
    private static final long SAMPLE_NANOS = 60_000_000L;

    private static long time(Runnable body) {
        long t0 = System.nanoTime();
        body.run();
        return System.nanoTime() - t0;
    }
}
