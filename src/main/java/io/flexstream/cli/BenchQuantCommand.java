package io.flexstream.cli;

import io.flexstream.quant.QuantBenchmark;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.concurrent.Callable;

/** {@code flexstream bench quant}: the fused 4-bit linear and compressed KV reads against their fp32 baselines. */
@Command(name = "quant", mixinStandardHelpOptions = true,
        description = "Fused 4-bit group-wise linear vs the fp32 linear, and compressed vs fp32 KV cache reads.")
public final class BenchQuantCommand implements Callable<Integer> {

    @Option(names = "--threads", defaultValue = "2", description = "Compute threads (default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--k", defaultValue = "2048", description = "Input features (default: ${DEFAULT-VALUE}).")
    int k;

    @Option(names = "--n", split = ",", defaultValue = "2048,8192",
            description = "Output features (default: ${DEFAULT-VALUE}).")
    List<Integer> n;

    @Option(names = "--m", split = ",", defaultValue = "1,4,16,64,512",
            description = "Rows (default: ${DEFAULT-VALUE}).")
    List<Integer> m;

    @Option(names = "--seconds", defaultValue = "1.5", description = "Seconds per case (default: ${DEFAULT-VALUE}).")
    double seconds;

    @Override
    public Integer call() {
        System.out.println("command: flexstream bench quant --threads " + threads + " --k " + k + " --n "
                + join(n) + " --m " + join(m) + " --seconds " + seconds);
        System.out.println("machine: " + MachineInfo.describe());
        QuantBenchmark.run(System.out, threads, k, n.stream().mapToInt(Integer::intValue).toArray(),
                m.stream().mapToInt(Integer::intValue).toArray(), seconds);
        QuantBenchmark.runKv(System.out, 32, 64, 1024, seconds);
        return 0;
    }

    private static String join(List<Integer> values) {
        return String.join(",", values.stream().map(String::valueOf).toList());
    }
}
