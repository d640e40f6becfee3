package io.flexstream.stream;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * CPU time of every live thread of this JVM at one instant, so that two samples give the CPU each group of threads
 * used in between. The pipeline benchmark uses it to show where a Kafka pass's CPU went besides generation: on a
 * two-core machine every core-second the broker or the clients take is a core-second the kernels wait for.
 */
final class ThreadCpuSample {

    private final Map<Long, String> names;
    private final Map<Long, Long> cpuNanos;

    private ThreadCpuSample(Map<Long, String> names, Map<Long, Long> cpuNanos) {
        this.names = names;
        this.cpuNanos = cpuNanos;
    }

    /** Whether this JVM can report per-thread CPU time (HotSpot on Linux can; the sample is empty otherwise). */
    static boolean supported() {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        return mx.isThreadCpuTimeSupported() && mx.isThreadCpuTimeEnabled();
    }

    static ThreadCpuSample take() {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        Map<Long, String> names = new HashMap<>();
        Map<Long, Long> cpu = new HashMap<>();
        if (!supported()) {
            return new ThreadCpuSample(names, cpu);
        }
        for (ThreadInfo info : mx.getThreadInfo(mx.getAllThreadIds())) {
            if (info == null) {
                continue; // ended between the two calls
            }
            long nanos = mx.getThreadCpuTime(info.getThreadId());
            if (nanos >= 0) {
                names.put(info.getThreadId(), info.getThreadName());
                cpu.put(info.getThreadId(), nanos);
            }
        }
        return new ThreadCpuSample(names, cpu);
    }

    /**
     * CPU seconds per group between {@code earlier} and this sample, grouped by {@code group} applied to the thread
     * name, largest first. Threads that started in between count from zero; threads that ended in between are lost
     * (their time is not reported by the JVM any more), which undercounts short-lived threads only.
     */
    Map<String, Double> since(ThreadCpuSample earlier, Function<String, String> group) {
        Map<String, Double> seconds = new HashMap<>();
        cpuNanos.forEach((id, nanos) -> {
            long before = earlier.cpuNanos.getOrDefault(id, 0L);
            if (nanos > before) {
                seconds.merge(group.apply(names.get(id)), (nanos - before) / 1e9, Double::sum);
            }
        });
        Map<String, Double> sorted = new LinkedHashMap<>();
        seconds.entrySet().stream().sorted(Map.Entry.<String, Double>comparingByValue().reversed())
                .forEach(e -> sorted.put(e.getKey(), e.getValue()));
        return sorted;
    }
}
