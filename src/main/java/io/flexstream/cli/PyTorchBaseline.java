package io.flexstream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flexstream.model.OptConfig;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * PyTorch timing the same generation as {@code bench generate}, in the same run: a Python process running FlexStream's
 * script {@code pytorch_opt_generate.py} (a random-weight OPT of the same shape, fp32, greedy, preallocated KV cache)
 * that times one generation per request, so that its runs can alternate with the engine's and a change in the shared
 * host's speed hits both alike. The ratio to it, not a figure measured on another day, is what says how the engine
 * compares.
 */
final class PyTorchBaseline implements AutoCloseable {

    private static final String SCRIPT = "/io/flexstream/bench/pytorch_opt_generate.py";
    private static final String INSTALL_HINT = "install PyTorch for that interpreter, e.g. on Debian 12 "
            + "'apt-get install python3-torch libopenblas0-pthread' and --pytorch /usr/bin/python3";

    /** How the script runs its matrix products (its --linear option; see the script). */
    enum Linear {
        /** F.linear on [out, in] weights, as torch.nn.Linear (and Hugging Face's OPT) runs them. */
        STANDARD,
        /** Weights transposed once to [in, out], x @ w_t, the bias added in place: faster with OpenBLAS here. */
        TUNED;

        String argument() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** The interpreter cannot run the script: its message says why and how to fix it. */
    static final class UnavailableException extends IllegalStateException {
        UnavailableException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** Wall seconds of one timed generation and of its two phases, as the script measured them. */
    record Run(double seconds, double prefill, double decode) {
    }

    private final Process process;
    private final Path script;
    private final Path stderr;
    private final BufferedReader stdout;
    private final Writer stdin;
    private final String description;
    private final Linear linear;
    private final ObjectMapper json = new ObjectMapper();

    private PyTorchBaseline(Process process, Path script, Path stderr, Linear linear) throws IOException {
        this.process = process;
        this.script = script;
        this.stderr = stderr;
        this.stdout = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        this.linear = linear;
        JsonNode ready = next("start");
        this.description = "PyTorch " + ready.path("torch").asText("?") + ", " + ready.path("threads").asInt()
                + " threads, --linear " + linear.argument() + ", BLAS " + ready.path("blas").asText("?");
    }

    /** Starts the script under {@code python} for {@code config}'s shape and waits until it has built its model. */
    static PyTorchBaseline start(String python, OptConfig config, int batch, int promptLen, int genLen, int threads,
                                 long seed, Linear linear) throws IOException {
        if (!config.doLayerNormBefore() || config.hasProjection()
                || !OptConfig.RELU.equals(config.activationFunction())) {
            throw new IllegalArgumentException("the PyTorch baseline script covers pre-LayerNorm ReLU OPT shapes "
                    + "without projections (every OPT but opt-350m); drop --pytorch for this shape");
        }
        Path script = Files.createTempFile("pytorch_opt_generate.py-", ".py");
        Path stderr = Files.createTempFile("flexstream-pytorch-", ".log");
        try (InputStream in = PyTorchBaseline.class.getResourceAsStream(SCRIPT)) {
            if (in == null) {
                throw new IllegalStateException("resource " + SCRIPT + " is missing from the jar");
            }
            Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
        }
        List<String> command = new ArrayList<>(List.of(python, script.toString(),
                "--hidden", "" + config.hiddenSize(), "--layers", "" + config.numLayers(),
                "--heads", "" + config.numHeads(), "--ffn", "" + config.ffnDim(), "--vocab", "" + config.vocabSize(),
                "--batch", "" + batch, "--prompt-len", "" + promptLen, "--gen-len", "" + genLen,
                "--threads", "" + threads, "--seed", "" + seed, "--linear", linear.argument()));
        ProcessBuilder builder = new ProcessBuilder(command).redirectError(stderr.toFile());
        builder.environment().put("OMP_NUM_THREADS", "" + threads); // OpenMP's pool, as torch.set_num_threads
        Process process;
        try {
            process = builder.start();
        } catch (IOException e) {
            cleanUp(script, stderr);
            throw new UnavailableException("cannot run the PyTorch baseline with '" + python + "': "
                    + e.getMessage() + "; " + INSTALL_HINT, e);
        }
        try {
            return new PyTorchBaseline(process, script, stderr, linear);
        } catch (IOException | RuntimeException e) {
            process.destroyForcibly();
            cleanUp(script, stderr);
            throw e;
        }
    }

    /** Versions, threads and the BLAS library the Python process loaded. */
    String describe() {
        return description;
    }

    /** The script's --linear variant. */
    String linear() {
        return linear.argument();
    }

    /** Times one generation. */
    Run run() throws IOException {
        stdin.write("run\n");
        stdin.flush();
        JsonNode r = next("run");
        return new Run(r.path("seconds").asDouble(), r.path("prefill").asDouble(), r.path("decode").asDouble());
    }

    /** The next JSON line, or an error quoting the script's stderr if it ended instead. */
    private JsonNode next(String what) throws IOException {
        String line = stdout.readLine();
        if (line == null) {
            String tail;
            try {
                process.waitFor(5, TimeUnit.SECONDS);
                List<String> lines = Files.readAllLines(stderr, StandardCharsets.UTF_8);
                tail = String.join("\n", lines.subList(Math.max(0, lines.size() - 5), lines.size()));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                tail = "(interrupted)";
            }
            String message = "the PyTorch baseline ended during " + what + " (exit "
                    + (process.isAlive() ? "none yet" : process.exitValue()) + "): " + tail;
            if (tail.contains("No module named 'torch'")) {
                throw new UnavailableException(message + "\n" + INSTALL_HINT, null);
            }
            throw new IllegalStateException(message);
        }
        return json.readTree(line);
    }

    @Override
    public void close() {
        try {
            stdin.close(); // end of input ends the script
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (IOException e) {
            process.destroyForcibly();
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        } finally {
            cleanUp(script, stderr);
        }
    }

    private static void cleanUp(Path... files) {
        for (Path f : files) {
            try {
                Files.deleteIfExists(f);
            } catch (IOException ignored) {
                // a temporary file left behind is harmless
            }
        }
    }
}
