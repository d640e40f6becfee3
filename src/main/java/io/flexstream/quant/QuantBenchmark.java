package io.flexstream.quant;

import io.flexstream.kernel.CpuKernels;
import jdk.incubator.vector.FloatVector;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * {@code flexstream bench quant}: GFLOP/s of the fused 4-bit linear ({@link QuantizedLinear}) against the engine's fp32
 * linear ({@link CpuKernels#linear}) with the same threads, both with weights in memory, at OPT-1.3B shapes (k = 2048,
 * n = 2048 and 8192), plus the bytes ratio. The two kernels are timed alternately, call by call, so that load from
 * other processes hits both alike; each case reports the median per call after warm-up; 2 * m * n * k flops per call.
 *
 * <p>Run: {@code java --add-modules jdk.incubator.vector -cp ... io.flexstream.quant.QuantBenchmark [threads]
 * [seconds-per-case] [m,m,...]}.
 */
public final class QuantBenchmark {

    private static final boolean CPU_TIME = Boolean.getBoolean("flexstream.bench.cpuTime");
    private static final java.lang.management.ThreadMXBean THREADS =
            java.lang.management.ManagementFactory.getThreadMXBean();

    private QuantBenchmark() {
    }

    /** One measured shape: medians in seconds per call. */
    public record Result(int m, int n, int k, double quantSeconds, double fp32Seconds) {

        double flops() {
            return 2.0 * m * n * k;
        }

        public double quantGflops() {
            return flops() / quantSeconds / 1e9;
        }

        public double fp32Gflops() {
            return flops() / fp32Seconds / 1e9;
        }
    }

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        double seconds = args.length > 1 ? Double.parseDouble(args[1]) : 1.0;
        int[] ms = args.length > 2 ? Arrays.stream(args[2].split(",")).mapToInt(Integer::parseInt).toArray()
                : new int[]{1, 4, 16, 64, 512};
        System.out.println("command: java --add-modules jdk.incubator.vector io.flexstream.quant.QuantBenchmark "
                + threads + " " + seconds + " " + Arrays.stream(ms).mapToObj(String::valueOf)
                .collect(java.util.stream.Collectors.joining(",")));
        run(System.out, threads, 2048, new int[]{2048, 8192}, ms, seconds);
        runKv(System.out, 32, 64, 1024, seconds);
    }

    /**
     * One decode step of attention for one sequence on one thread: every head's query against {@code context} cached
     * positions, read compressed by {@link QuantizedAttention} (the engine's --compress-cache path) against the
     * engine's fp32 attention kernel over the same values uncompressed. Prints GFLOP/s (2 * 2 * context * hidden
     * flops: scores and weighted sum) and the cache bytes ratio; returns {4-bit, fp32} seconds per step.
     */
    public static double[] runKv(PrintStream out, int heads, int headDim, int context, double seconds) {
        try (Arena arena = Arena.ofShared();
             QuantizedAttention quant = new QuantizedAttention(1);
             CpuKernels fp32 = new CpuKernels(1)) {
            Random rnd = new Random(2);
            int hidden = heads * headDim;
            KvRowFormat format = KvRowFormat.of(heads, headDim);
            MemorySegment k32 = fill(arena, (long) context * hidden, rnd, 1.0);
            MemorySegment v32 = fill(arena, (long) context * hidden, rnd, 1.0);
            MemorySegment kq = arena.allocate(context * format.rowBytes(), 64);
            MemorySegment vq = arena.allocate(context * format.rowBytes(), 64);
            for (int pos = 0; pos < context; pos++) {
                format.quantize(k32, (long) pos * hidden * 4, kq, pos * format.rowBytes());
                format.quantize(v32, (long) pos * hidden * 4, vq, pos * format.rowBytes());
            }
            MemorySegment valid = arena.allocate((long) context * 4, 64);
            for (int pos = 0; pos < context; pos++) {
                valid.setAtIndex(QuantizedMatrix.F32, pos, 1f);
            }
            MemorySegment q = fill(arena, hidden, rnd, 1 / Math.sqrt(headDim));
            MemorySegment o = arena.allocate((long) hidden * 4, 64);
            double[] t = medians(() -> quant.attention(q, kq, vq, valid, o, 1, 1, context, context, format),
                    () -> fp32.attention(q, k32, v32, valid, o, 1, 1, context, context, heads, headDim), seconds);
            double flops = 2.0 * 2 * context * hidden;
            out.printf("decode attention, %d heads x %d, %d cached tokens, 1 thread: 4-bit cache %.1f GFLOP/s, "
                            + "fp32 cache %.1f GFLOP/s (%.2fx); cache %.3fx of fp16%n", heads, headDim, context,
                    flops / t[0] / 1e9, flops / t[1] / 1e9, t[1] / t[0],
                    (double) format.rowBytes() / format.fp16RowBytes());
            return t;
        }
    }

    /** Measures every (m, n) at the given k and prints a table; returns the results in print order. */
    public static Result[] run(PrintStream out, int threads, int k, int[] ns, int[] ms, double secondsPerCase) {
        out.println("machine: " + machine());
        out.printf("threads %d, k %d, group 64, fp16 metadata, about %.1f s per case, kernels alternated,"
                + " median of calls, clock %s%n", threads, k, secondsPerCase, CPU_TIME ? "thread CPU time" : "wall");
        Result[] results = new Result[ns.length * ms.length];
        int r = 0;
        try (Arena arena = Arena.ofShared();
             QuantizedLinear quant = new QuantizedLinear(threads);
             CpuKernels fp32 = new CpuKernels(threads)) {
            out.println("4-bit: " + quant.name() + "; fp32: " + fp32.name());
            Random rnd = new Random(1);
            for (int n : ns) {
                MemorySegment w = fill(arena, (long) n * k, rnd, 0.02);
                QuantizedMatrix qm = QuantizedMatrix.quantize(w, n, k, 64, arena);
                out.printf("n %d: fp32 weight %.1f MiB, fp16 %.1f MiB, 4-bit %.1f MiB (%.3fx of fp16)%n",
                        n, w.byteSize() / 1048576.0, qm.fp16Bytes() / 1048576.0, qm.bytes() / 1048576.0,
                        (double) qm.bytes() / qm.fp16Bytes());
                out.printf("%6s %6s %6s %14s %14s %8s%n", "m", "n", "k", "4-bit GFLOP/s", "fp32 GFLOP/s", "ratio");
                for (int m : ms) {
                    MemorySegment x = fill(arena, (long) m * k, rnd, 1.0);
                    MemorySegment y = arena.allocate((long) m * n * 4, 64);
                    double[] t = medians(() -> quant.linear(x, qm, null, y, m, n, k),
                            () -> fp32.linear(x, w, null, y, m, n, k), secondsPerCase);
                    Result res = new Result(m, n, k, t[0], t[1]);
                    results[r++] = res;
                    out.printf("%6d %6d %6d %14.1f %14.1f %7.2fx%n", m, n, k, res.quantGflops(), res.fp32Gflops(),
                            res.quantGflops() / res.fp32Gflops());
                }
            }
        }
        return results;
    }

    private static MemorySegment fill(Arena arena, long count, Random rnd, double sigma) {
        MemorySegment s = arena.allocate(count * 4, 64);
        for (long i = 0; i < count; i++) {
            s.setAtIndex(QuantizedMatrix.F32, i, (float) (rnd.nextGaussian() * sigma));
        }
        return s;
    }

    /**
     * Warm up both kernels for a third of the budget (at least 3 calls each), then time them alternately for the rest,
     * so that load from other processes on a shared machine hits both alike; returns median seconds per call of each.
     */
    private static double[] medians(Runnable a, Runnable b, double seconds) {
        long warmEnd = System.nanoTime() + (long) (seconds / 3 * 1e9);
        for (int i = 0; i < 3 || System.nanoTime() < warmEnd; i++) {
            a.run();
            b.run();
        }
        double[] ta = new double[5_000];
        double[] tb = new double[5_000];
        int count = 0;
        long end = System.nanoTime() + (long) (seconds * 2 / 3 * 1e9);
        while (count < ta.length && (count < 5 || System.nanoTime() < end)) {
            long t0 = clock();
            a.run();
            long t1 = clock();
            b.run();
            long t2 = clock();
            ta[count] = (t1 - t0) / 1e9;
            tb[count++] = (t2 - t1) / 1e9;
        }
        Arrays.sort(ta, 0, count);
        Arrays.sort(tb, 0, count);
        return new double[]{ta[count / 2], tb[count / 2]};
    }

    /**
     * Nanoseconds of the chosen clock: wall time, or with -Dflexstream.bench.cpuTime=true the calling thread's CPU
     * time, which ignores the time other processes hold the core on a shared machine (meaningful for 1 thread only).
     */
    private static long clock() {
        return CPU_TIME ? THREADS.getCurrentThreadCpuTime() : System.nanoTime();
    }

    /** CPU model, cores, JVM and vector width: numbers are never quoted without them. */
    static String machine() {
        String cpu = "unknown CPU";
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse(cpu);
        } catch (IOException | RuntimeException ignored) {
            // not Linux: the rest still says enough
        }
        return String.format("%s, %d cores, JVM %s, %s", cpu, Runtime.getRuntime().availableProcessors(),
                Runtime.version(), FloatVector.SPECIES_PREFERRED);
    }
}
