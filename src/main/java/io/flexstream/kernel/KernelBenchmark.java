package io.flexstream.kernel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import jdk.incubator.vector.FloatVector;

/**
 * Times {@link Kernels#linear} at OPT-125M's shapes and reports GFLOP/s (2*m*n*k per call) as a table: the fast
 * backend at every shape, and the fast backend against a baseline (normally {@link ScalarKernels}) at one small shape
 * where the baseline finishes in reasonable time, so each run carries its own ratio. Each timing is the median of
 * {@code iterations} calls after warm-up calls, because the machine's cores are shared and single runs are noisy.
 * Next to wall-clock GFLOP/s it prints GFLOP per CPU-second of the whole process (all kernel threads together): on a
 * machine shared with other builds the wall-clock figure mostly measures the neighbours, the CPU-time figure much
 * less so (it still suffers from shared caches).
 *
 * <p>Entry points: {@link #run} for the CLI ({@code flexstream bench kernels}), and {@link #main} for now.
 */
public final class KernelBenchmark {

    /** One linear shape: x[m,k] times w[n,k]^T. */
    public record Shape(String label, int m, int n, int k) {
        double flops() {
            return 2.0 * m * n * k;
        }
    }

    /** OPT-125M: prefill 32 sequences x 128 tokens, decode 32 sequences x 1 token, h=768, ffn=3072, vocab 50272. */
    public static final List<Shape> OPT_125M = List.of(
            new Shape("prefill qkv/out-proj", 4096, 768, 768),
            new Shape("prefill fc1", 4096, 3072, 768),
            new Shape("prefill fc2", 4096, 768, 3072),
            new Shape("decode qkv/out-proj", 32, 768, 768),
            new Shape("decode fc1", 32, 3072, 768),
            new Shape("decode fc2", 32, 768, 3072),
            new Shape("decode lm_head", 32, 50272, 768));

    /** Small enough that the scalar baseline takes well under a second per call. */
    public static final Shape BASELINE_SHAPE = new Shape("baseline (small)", 64, 768, 768);

    private KernelBenchmark() {
    }

    /** Runs the benchmark and returns the report as text (machine description, then one line per shape). */
    public static String run(Kernels fast, Kernels baseline, List<Shape> shapes, int iterations) {
        var report = new StringBuilder();
        report.append(machine()).append('\n');
        report.append(String.format(Locale.ROOT, "fast: %s, baseline: %s, median of %d samples after warm-up%n",
                fast.name(), baseline.name(), iterations));
        report.append(String.format(Locale.ROOT, "%-22s %6s %6s %6s %10s %10s %12s%n",
                "shape", "m", "n", "k", "ms", "GFLOP/s", "GFLOP/cpu-s"));
        for (Shape shape : shapes) {
            report.append(line(shape, fast.name(), time(fast, shape, iterations)));
        }
        Timing fastTiming = time(fast, BASELINE_SHAPE, iterations);
        Timing baseTiming = time(baseline, BASELINE_SHAPE, Math.min(iterations, 3));
        report.append(line(BASELINE_SHAPE, fast.name(), fastTiming));
        report.append(line(BASELINE_SHAPE, baseline.name(), baseTiming));
        report.append(String.format(Locale.ROOT, "speed-up of %s over %s at %dx%dx%d: %.1fx wall, %.1fx CPU time%n",
                fast.name(), baseline.name(), BASELINE_SHAPE.m(), BASELINE_SHAPE.n(), BASELINE_SHAPE.k(),
                baseTiming.wallMs() / fastTiming.wallMs(), baseTiming.cpuMs() / fastTiming.cpuMs()));
        return report.toString();
    }

    /** Cores, Vector API species and JVM: the facts a reader needs to compare numbers across machines. */
    public static String machine() {
        return String.format(Locale.ROOT, "machine: %d cores (%s %s), vector species %s (%d float lanes), Java %s",
                Runtime.getRuntime().availableProcessors(), System.getProperty("os.name"),
                System.getProperty("os.arch"), FloatVector.SPECIES_PREFERRED, FloatVector.SPECIES_PREFERRED.length(),
                Runtime.version());
    }

    private static String line(Shape shape, String backend, Timing t) {
        return String.format(Locale.ROOT, "%-22s %6d %6d %6d %10.2f %10.1f %12.1f  %s%n", shape.label(), shape.m(),
                shape.n(), shape.k(), t.wallMs(), shape.flops() / (t.wallMs() * 1e6),
                shape.flops() / (t.cpuMs() * 1e6), backend);
    }

    /** Medians per call: wall-clock milliseconds, and process CPU milliseconds (all threads). */
    public record Timing(double wallMs, double cpuMs) {
    }

    /** Medians over {@code iterations} samples, after warm-up calls (which also JIT-compile the kernel). */
    static Timing time(Kernels kernels, Shape shape, int iterations) {
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = random(arena, (long) shape.m() * shape.k(), 1);
            MemorySegment w = random(arena, (long) shape.n() * shape.k(), 2);
            MemorySegment bias = random(arena, shape.n(), 3);
            MemorySegment out = arena.allocate(4L * shape.m() * shape.n(), 64);
            // Warm-up: at least 3 calls and 300 ms, so C2 has compiled the kernel (its compiler threads would
            // otherwise show up in the process CPU time).
            long warmStart = System.nanoTime();
            int warmCalls = 0;
            while (warmCalls < 3 || System.nanoTime() - warmStart < 300_000_000L) {
                kernels.linear(x, w, bias, out, shape.m(), shape.n(), shape.k());
                warmCalls++;
            }
            long lastStart = System.nanoTime();
            kernels.linear(x, w, bias, out, shape.m(), shape.n(), shape.k());
            // Process CPU time can tick coarsely, so a sample groups enough calls to last about 100 ms.
            double callMs = (System.nanoTime() - lastStart) / 1e6;
            int calls = (int) Math.max(1, Math.ceil(100 / Math.max(callMs, 1e-3)));
            double[] wall = new double[iterations];
            double[] cpu = new double[iterations];
            for (int i = 0; i < iterations; i++) {
                long cpuStart = os.getProcessCpuTime();
                long start = System.nanoTime();
                for (int c = 0; c < calls; c++) {
                    kernels.linear(x, w, bias, out, shape.m(), shape.n(), shape.k());
                }
                wall[i] = (System.nanoTime() - start) / 1e6 / calls;
                cpu[i] = (os.getProcessCpuTime() - cpuStart) / 1e6 / calls;
            }
            return new Timing(median(wall), median(cpu));
        }
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }

    private static MemorySegment random(Arena arena, long count, long seed) {
        MemorySegment s = arena.allocate(4 * count, 64);
        var random = new SplittableRandom(seed);
        for (long i = 0; i < count; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextDouble(-1, 1));
        }
        return s;
    }

    /** Usage: KernelBenchmark [threads] [iterations]; defaults: all cores, 7. */
    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        int iterations = args.length > 1 ? Integer.parseInt(args[1]) : 7;
        System.out.println("command: java --add-modules jdk.incubator.vector -cp <classes> "
                + KernelBenchmark.class.getName() + " " + String.join(" ", Arrays.asList(args)));
        try (CpuKernels fast = new CpuKernels(threads)) {
            System.out.print(run(fast, new ScalarKernels(), OPT_125M, iterations));
        }
    }
}
