package io.flexstream.cli;

import io.flexstream.engine.Generator;
import io.flexstream.engine.OptGenerator;
import io.flexstream.model.OptConfig;
import io.flexstream.model.TinyModel;
import io.flexstream.tensor.DType;

import java.nio.file.Files;
import java.nio.file.Path;

/** Opens the engine for {@code serve}, {@code demo} and {@code bench pipeline}, and writes the demo's tiny model. */
final class Engines {

    /** The demo's model shape: small enough to write and run in seconds on two CPU cores. */
    static final int TINY_HIDDEN = 64;
    static final int TINY_LAYERS = 2;
    static final int TINY_HEADS = 4;

    private Engines() {
    }

    /** Loads the OPT checkpoint directory {@code modelDir} onto the default backend. */
    static Generator open(Path modelDir) {
        if (!Files.isDirectory(modelDir)) {
            throw new IllegalArgumentException("model directory " + modelDir + " does not exist");
        }
        return OptGenerator.load(modelDir);
    }

    /** Writes a random tiny OPT model (hidden 64, 2 layers, 4 heads, OPT's vocabulary size) into {@code dir}. */
    static void writeTinyModel(Path dir, long seed) {
        TinyModel.write(dir, OptConfig.tiny(TINY_HIDDEN, TINY_LAYERS, TINY_HEADS, OptConfig.DEFAULT_VOCAB_SIZE), seed,
                DType.F32);
    }
}
