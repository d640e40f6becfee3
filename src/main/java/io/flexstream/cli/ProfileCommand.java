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
import java.util.Arrays;
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
        step("[3/6] disk tier (O_DIRECT) reads and writes");
        double[] disk = diskRates(null);
        double prefill;
        double decode;
        double stream;
        double attentionPrefill;
        double attentionDecode;
        double diskWhileComputing;
        try (CpuKernels kernels = new CpuKernels()) {
            step("[4/6] linear at prefill and decode shapes with " + kernels.name());
            prefill = linearFlops(kernels, 1024, hidden, hidden);
            decode = linearFlops(kernels, 32, 4 * hidden, hidden);
            // One input row: the time is the weight read; bytes of weights per second. The matrix is 256 MiB so
            // that it streams from memory as a model's layers do, not from the last-level cache.
            int streamRows = (int) ((256L << 20) / (4L * hidden));
            stream = linearFlops(kernels, 1, streamRows, hidden) / 2 * 4;
            step("[5/6] attention at prefill and decode shapes");
            attentionPrefill = attentionFlops(kernels, 4, 256, 256);
            attentionDecode = attentionFlops(kernels, 32, 1, 512);
            step("[6/6] disk tier reads while the kernels compute");
            diskWhileComputing = diskRates(kernels)[0];
        }
        // The engine reads weights from disk while it computes, so the rate that predicts it is the loaded one: on
        // VMs whose disk I/O needs CPU time the two differ (e.g. 2 cores: 0.6 GB/s quiet, 0.34 GB/s computing).
        HardwareProfile profile = new HardwareProfile(name,
                String.format(java.util.Locale.ROOT, "measured by flexstream profile on %s (CPU backend, fp32); "
                        + "disk read %.2f GB/s quiet, %.2f GB/s while computing (the latter is diskToHost)",
                        MachineInfo.describe(), disk[0] / 1e9, diskWhileComputing / 1e9),
                Sizes.parse(deviceMem), Sizes.parse(hostMem), Sizes.parse(diskMem),
                hostToDevice, deviceToHost, deviceToHost, diskWhileComputing, disk[1], disk[1], disk[1],
                prefill, decode, attentionPrefill, attentionDecode, attentionDecode, 0, 0, 0,
                decode / 2, stream);
        profile.write(output);
        System.out.printf("host->device %.1f GB/s, device->host %.1f GB/s, disk read %.2f GB/s (%.2f GB/s while "
                        + "computing), disk write %.2f GB/s, linear %.1f / %.1f GFLOP/s (prefill / decode), weight "
                        + "stream %.1f GB/s, attention %.1f / %.1f GFLOP/s%n",
                hostToDevice / 1e9, deviceToHost / 1e9, disk[0] / 1e9, diskWhileComputing / 1e9, disk[1] / 1e9,
                prefill / 1e9, decode / 1e9, stream / 1e9, attentionPrefill / 1e9, attentionDecode / 1e9);
        System.out.println("wrote " + output + " (use: flexstream policy --hardware " + output
                + " --element-bytes 4 ...)");
        return 0;
    }

    private static void step(String what) {
        System.err.println("profile: " + what);
    }

    /**
     * O_DIRECT read and write rates of the disk tier, {read, write} bytes per second; with {@code load} non-null the
     * kernels run a linear in a loop on another thread meanwhile (as the engine computes while it prefetches).
     */
    private double[] diskRates(CpuKernels load) throws InterruptedException {
        long bytes = 512L << 20;
        DiskTier disk = new DiskTier(offloadDir, bytes, true);
        MemoryTier staging = new MemoryTier(TierKind.HOST, 32L << 20);
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread computing = null;
        if (load != null) {
            computing = Thread.ofPlatform().daemon().name("profile-load").start(() -> {
                int m = 32;
                try (MemoryTier.Buffer x = scratch((long) m * hidden); MemoryTier.Buffer w = scratch(4L * hidden * hidden);
                     MemoryTier.Buffer out = scratch(4L * m * hidden)) {
                    fill(x.segment());
                    fill(w.segment());
                    while (!stop.get()) {
                        load.linear(x.segment(), w.segment(), null, out.segment(), m, 4 * hidden, hidden);
                    }
                }
            });
        }
        try (DiskTier.Region region = disk.allocate(bytes, "profile");
             MemoryTier.Buffer buffer = staging.allocate(32L << 20, "profile")) {
            double write = rate(bytes, () -> time(() -> {
                for (long at = 0; at < bytes; at += buffer.bytes()) {
                    region.write(at, buffer.segment(), 0, buffer.bytes());
                }
            }));
            double read = rate(bytes, () -> time(() -> {
                for (long at = 0; at < bytes; at += buffer.bytes()) {
                    region.read(at, buffer.segment(), 0, buffer.bytes());
                }
            }));
            if (!disk.direct()) {
                System.err.println("profile: WARNING O_DIRECT unavailable in " + offloadDir
                        + ": disk rates include the page cache");
            }
            return new double[] {read, write};
        } finally {
            stop.set(true);
            if (computing != null) {
                computing.join();
            }
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
     * Work units per second: the median of five timed runs after at least a second of warm-up runs. A small shape's
     * first calls run code the JIT has not compiled yet (C2 compiles a path only after many calls), which measured
     * the decode-shaped linear at a third of its steady rate with two warm-up calls.
     */
    private static double rate(double work, LongSupplier nanosOfOneRun) {
        long warmedNanos = 0;
        for (int runs = 0; runs < 3 || warmedNanos < 1_000_000_000L; runs++) {
            warmedNanos += nanosOfOneRun.getAsLong();
        }
        long[] runs = new long[5];
        for (int i = 0; i < runs.length; i++) {
            runs[i] = nanosOfOneRun.getAsLong();
        }
        Arrays.sort(runs);
        return work / (runs[runs.length / 2] / 1e9);
    }

    private static long time(Runnable body) {
        long t0 = System.nanoTime();
        body.run();
        return System.nanoTime() - t0;
    }
}
