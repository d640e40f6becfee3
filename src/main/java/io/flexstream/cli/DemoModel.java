package io.flexstream.cli;

import io.flexstream.model.OptConfig;
import io.flexstream.model.TinyModel;
import io.flexstream.tensor.DType;

import java.nio.file.Path;

/** The demo's tiny model: small enough to write and run in seconds on two CPU cores. */
final class DemoModel {

    static final int HIDDEN = 64;
    static final int LAYERS = 2;
    static final int HEADS = 4;

    private DemoModel() {
    }

    /** Writes a random tiny OPT model (hidden 64, 2 layers, 4 heads, OPT's vocabulary size) into {@code dir}. */
    static void write(Path dir, long seed) {
        TinyModel.write(dir, OptConfig.tiny(HIDDEN, LAYERS, HEADS, OptConfig.DEFAULT_VOCAB_SIZE), seed, DType.F32);
    }
}
