package io.flexstream.kernel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
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
        report.append(String.format(Locale.ROOT, "fast: %s, baseline: %s, median of %d calls after warm-up%n",
                fast.name(), baseline.name(), iterations));
        report.append(String.format(Locale.ROOT, "%-22s %6s %6s %6s %10s %10s%n",
                "shape", "m", "n", "k", "ms", "GFLOP/s"));
        for (Shape shape : shapes) {
            report.append(line(shape, fast.name(), time(fast, shape, iterations)));
        }
        double fastMs = time(fast, BASELINE_SHAPE, iterations);
        double baseMs = time(baseline, BASELINE_SHAPE, Math.min(iterations, 3));
        report.append(line(BASELINE_SHAPE, fast.name(), fastMs));
        report.append(line(BASELINE_SHAPE, baseline.name(), baseMs));
        report.append(String.format(Locale.ROOT, "speed-up of %s over %s at %dx%dx%d: %.1fx%n", fast.name(),
                baseline.name(), BASELINE_SHAPE.m(), BASELINE_SHAPE.n(), BASELINE_SHAPE.k(), baseMs / fastMs));
        return report.toString();
    }

    /** Cores, Vector API species and JVM: the facts a reader needs to compare numbers across machines. */
    public static String machine() {
        return String.format(Locale.ROOT, "machine: %d cores (%s %s), vector species %s (%d float lanes), Java %s",
                Runtime.getRuntime().availableProcessors(), System.getProperty("os.name"),
                System.getProperty("os.arch"), FloatVector.SPECIES_PREFERRED, FloatVector.SPECIES_PREFERRED.length(),
                Runtime.version());
    }

    private static String line(Shape shape, String backend, double ms) {
        return String.format(Locale.ROOT, "%-22s %6d %6d %6d %10.2f %10.1f  %s%n", shape.label(), shape.m(),
                shape.n(), shape.k(), ms, shape.flops() / (ms * 1e6), backend);
    }

    /** Median milliseconds per call, after two warm-up calls (which also JIT-compile the kernel). */
    static double time(Kernels kernels, Shape shape, int iterations) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = random(arena, (long) shape.m() * shape.k(), 1);
            MemorySegment w = random(arena, (long) shape.n() * shape.k(), 2);
            MemorySegment bias = random(arena, shape.n(), 3);
            MemorySegment out = arena.allocate(4L * shape.m() * shape.n(), 64);
            for (int i = 0; i < 2; i++) {
                kernels.linear(x, w, bias, out, shape.m(), shape.n(), shape.k());
            }
            List<Double> samples = new ArrayList<>();
            for (int i = 0; i < iterations; i++) {
                long start = System.nanoTime();
                kernels.linear(x, w, bias, out, shape.m(), shape.n(), shape.k());
                samples.add((System.nanoTime() - start) / 1e6);
            }
            double[] sorted = samples.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            return sorted[sorted.length / 2];
        }
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
