package io.flexstream.cli;

import io.flexstream.engine.EngineOptions;
import io.flexstream.engine.Engines;
import io.flexstream.engine.Generator;
import io.flexstream.kernel.Backends;
import io.flexstream.kernel.Kernels;
import io.flexstream.tier.Sizes;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/** {@code --backend auto|cpu|cuda}, shared by every command that builds an engine. */
final class BackendOptions {

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "auto|cpu|cuda",
            description = "Compute backend: cuda (one NVIDIA GPU; an error if unusable), cpu, or auto (the GPU when "
                    + "it works, else the CPU, with the reason logged). Default: ${DEFAULT-VALUE}.")
    String backend;

    /**
     * @param deviceMem        --device-mem when the command has it (the cuda weight budget), else null for the
     *                         device's memory less headroom
     * @param weightsMayChange true for the offloading engine
     */
    Kernels kernels(int threads, String deviceMem, boolean weightsMayChange, Consumer<String> log) {
        return Backends.create(Backends.Choice.parse(backend), threads, deviceMem == null ? 0 : Sizes.parse(deviceMem),
                weightsMayChange, log);
    }

    /**
     * The in-memory engine over a checkpoint directory on the chosen backend, with default options: what
     * {@code Engines.open(dir)} gives on the CPU. The generator owns the kernels.
     */
    Generator openInMemory(Path modelDir, Consumer<String> log) {
        if (!Files.isDirectory(modelDir)) {
            throw new IllegalArgumentException("model directory " + modelDir + " does not exist");
        }
        Kernels kernels = kernels(0, null, false, log);
        try {
            return Engines.open(modelDir, kernels, EngineOptions.defaults(), null, null);
        } catch (RuntimeException e) {
            if (kernels instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }
}
