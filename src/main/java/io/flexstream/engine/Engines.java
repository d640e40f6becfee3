package io.flexstream.engine;

import io.flexstream.kernel.Kernels;
import io.flexstream.model.Checkpoint;
import io.flexstream.model.OptWeights;
import io.flexstream.model.tokenizer.Gpt2Tokenizer;
import io.flexstream.tier.Tiers;

import java.lang.foreign.Arena;
import java.nio.file.Path;

/** Opens a checkpoint directory as the plain in-memory engine or, given a placement, as the offloading engine. */
public final class Engines {

    private Engines() {
    }

    /** Loads a checkpoint directory as the in-memory engine on the CPU backend with all cores. */
    public static Generator open(Path modelDir) {
        if (!java.nio.file.Files.isDirectory(modelDir)) {
            throw new IllegalArgumentException("model directory " + modelDir + " does not exist");
        }
        return OptGenerator.load(modelDir);
    }

    /**
     * @param placement null for the plain in-memory engine
     * @param tiers     the offloading engine's tiers (owned by the engine from here on); ignored without placement
     */
    public static Generator open(Path modelDir, Kernels kernels, EngineOptions options, Placement placement,
                                 Tiers tiers) {
        if (placement == null) {
            return OptGenerator.load(modelDir, kernels, options);
        }
        // The checkpoint is read once into the tiers; the fp32 staging copy (and the mapping of the compressed
        // weight cache) are freed as soon as they hold it.
        try (Arena staging = Arena.ofShared(); Checkpoint checkpoint = Checkpoint.open(modelDir)) {
            OptWeights weights = OptWeights.load(checkpoint, staging);
            Gpt2Tokenizer tokenizer = Gpt2Tokenizer.load(modelDir);
            Path name = modelDir.toAbsolutePath().normalize().getFileName();
            CompressedWeightCache cache = options.compressWeight()
                    ? CompressedWeightCache.open(modelDir, options.weightCacheDir(), weights) : null;
            try {
                return new OffloadedGenerator(weights, cache == null ? null : cache.layers(), tokenizer, kernels,
                        placement, tiers, options, name == null ? "model" : name.toString(), null, tiers,
                        kernels instanceof AutoCloseable c ? c : () -> { });
            } finally {
                if (cache != null) {
                    cache.close();
                }
            }
        }
    }
}
