package io.flexstream.stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.junit.jupiter.api.Test;

class ThreadCpuSampleTest {

    @Test
    void groupsTheEngineWithItsKernelWorkersAndOtherThreadsByNameWithoutTheirNumber() {
        assertEquals("engine (generation)", PipelineBenchmark.threadGroup("flexstream-engine"));
        assertEquals("engine (generation)", PipelineBenchmark.threadGroup("flexstream-kernel-1"));
        assertEquals("data-plane-kafka-request-handler",
                PipelineBenchmark.threadGroup("data-plane-kafka-request-handler-7"));
        assertEquals("flexstream-poll", PipelineBenchmark.threadGroup("flexstream-poll"));
    }

    @Test
    void chargesABusyThreadsCpuToItsGroup() throws Exception {
        assumeTrue(ThreadCpuSample.supported(), "this JVM reports no per-thread CPU time");
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch stop = new CountDownLatch(1);
        Thread spinner = Thread.ofPlatform().name("test-spinner-3").start(() -> {
            started.countDown();
            long x = 0;
            while (stop.getCount() > 0) {
                x += System.nanoTime() & 1; // busy, not sleeping
            }
            if (x == 42) {
                System.out.print("");
            }
        });
        started.await();
        ThreadCpuSample before = ThreadCpuSample.take();
        Thread.sleep(300);
        ThreadCpuSample after = ThreadCpuSample.take();
        stop.countDown();
        spinner.join();
        Map<String, Double> cpu = after.since(before, PipelineBenchmark::threadGroup);
        double spun = cpu.getOrDefault("test-spinner", 0.0);
        assertTrue(spun > 0.05 && spun < 1.0, "spinner CPU seconds over 0.3 s of wall time: " + cpu);
        String line = PipelineBenchmark.cpuLine(Map.of("engine (generation)", 2.0, "broker", 0.5));
        assertTrue(line.startsWith("engine (generation) 2.00 s, all other threads 0.50 s (largest: broker 0.50 s)"),
                line);
    }
}
