package io.flexstream.cli;

import io.flexstream.engine.Generator;
import io.flexstream.tensor.DType;

import java.lang.reflect.InvocationTargetException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Opens the real engine for {@code serve}, {@code demo} and the pipeline benchmark, and writes the demo's tiny model.
 *
 * <p>TEMPORARY seam: {@code io.flexstream.engine.OptGenerator.load(Path)} and
 * {@code io.flexstream.model.TinyModel.write(Path, OptConfig, long, DType)} live on other branches that do not yet
 * compile on {@code main}; they are called reflectively so the Kafka branch builds and tests on its own. Once they are
 * merged, replace both bodies with the direct calls (the signatures are the ones named here).
 */
final class Engines {

    /** The demo's model shape: small enough to generate and run in seconds on two CPU cores. */
    static final int TINY_HIDDEN = 64;
    static final int TINY_LAYERS = 2;
    static final int TINY_HEADS = 4;

    private Engines() {
    }

    /** Loads the OPT checkpoint directory {@code modelDir}. */
    static Generator open(Path modelDir) {
        if (!Files.isDirectory(modelDir)) {
            throw new IllegalArgumentException("model directory " + modelDir + " does not exist");
        }
        Object generator = call("io.flexstream.engine.OptGenerator", "load", new Class<?>[] {Path.class}, modelDir);
        return (Generator) generator;
    }

    /** Writes a random tiny OPT model (hidden 64, 2 layers, 4 heads, the OPT vocabulary) into {@code dir}. */
    static void writeTinyModel(Path dir, long seed) {
        try {
            Class<?> configClass = Class.forName("io.flexstream.model.OptConfig");
            int vocab = configClass.getField("DEFAULT_VOCAB_SIZE").getInt(null);
            Object config = configClass.getMethod("tiny", int.class, int.class, int.class, int.class)
                    .invoke(null, TINY_HIDDEN, TINY_LAYERS, TINY_HEADS, vocab);
            call("io.flexstream.model.TinyModel", "write", new Class<?>[] {Path.class, configClass, long.class,
                    DType.class}, dir, config, seed, DType.F32);
        } catch (ReflectiveOperationException e) {
            throw missing(e);
        }
    }

    private static Object call(String className, String method, Class<?>[] types, Object... args) {
        try {
            return Class.forName(className).getMethod(method, types).invoke(null, args);
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new IllegalStateException(e.getCause());
        } catch (ReflectiveOperationException e) {
            throw missing(e);
        }
    }

    private static IllegalStateException missing(ReflectiveOperationException e) {
        return new IllegalStateException("this build has no OPT engine yet (" + e + "); the engine and model "
                + "packages must be merged", e);
    }
}
