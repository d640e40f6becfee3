package io.flexstream.cli;

import jdk.incubator.vector.FloatVector;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** One line describing the machine a benchmark ran on, so that numbers are never quoted without it. */
final class MachineInfo {

    private MachineInfo() {
    }

    /** The 1, 5 and 15 minute load averages (Linux), for labelling timings taken on a shared machine. */
    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return "load average " + f[0] + ", " + f[1] + ", " + f[2];
        } catch (IOException | RuntimeException e) {
            return "load average unknown";
        }
    }

    static String describe() {
        String cpu = "unknown CPU";
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                    .filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).trim())
                    .findFirst().orElse(cpu);
        } catch (IOException | RuntimeException ignored) {
            // not Linux: the rest of the line still says enough
        }
        long memGiB = Runtime.getRuntime().maxMemory() >> 30;
        return String.format("%s, %d cores, JVM %s (max heap %d GiB), vector species %s", cpu,
                Runtime.getRuntime().availableProcessors(), Runtime.version(), memGiB,
                FloatVector.SPECIES_PREFERRED);
    }
}
