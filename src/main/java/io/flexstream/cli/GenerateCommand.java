package io.flexstream.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flexstream.engine.EngineOptions;
import io.flexstream.engine.GenerationListener;
import io.flexstream.engine.GenerationRequest;
import io.flexstream.engine.GenerationResult;
import io.flexstream.engine.Generator;
import io.flexstream.engine.InvalidRequestException;
import io.flexstream.engine.Engines;
import io.flexstream.engine.OffloadedGenerator;
import io.flexstream.engine.Placement;
import io.flexstream.engine.PreparedPrompt;
import io.flexstream.engine.PromptLine;
import io.flexstream.engine.SamplingParams;
import io.flexstream.kernel.CpuKernels;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code flexstream generate}: completes a JSON-lines file of prompts offline, without Kafka. A bad line yields an
 * error line for its id; the run goes on.
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Complete a JSON-lines file of prompts with a local model.",
                "Input lines: {\"id\": ..., \"prompt\": \"text\"} or {\"id\": ..., \"prompt_token_ids\": [..]},"
                        + " with optional max_new_tokens, temperature, top_p, top_k, seed, stop.",
                "Output lines: {\"id\", \"text\", \"token_ids\", \"prompt_tokens\", \"finish_reason\"}, or"
                        + " {\"id\", \"error\"} for a line that could not be used."})
public final class GenerateCommand implements Callable<Integer> {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--model", required = true, description = "Checkpoint directory (Hugging Face OPT layout).")
    Path model;

    @Option(names = "--input", required = true, description = "Prompts, one JSON object per line.")
    Path input;

    @Option(names = "--output", required = true, description = "Completions, one JSON object per line.")
    Path output;

    @Option(names = "--batch-size", defaultValue = "32",
            description = "Sequences generated together (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--threads", defaultValue = "0",
            description = "Compute threads, 0 = all cores (default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--max-new-tokens", defaultValue = "32",
            description = "Default for lines without max_new_tokens (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0",
            description = "Default temperature, 0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-p", defaultValue = "1", description = "Default top_p (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--top-k", defaultValue = "0", description = "Default top_k, 0 = off (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--seed", defaultValue = "0", description = "Default seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--stop", description = "Default stop string(s); repeat for several.")
    List<String> stop = new ArrayList<>();

    @CommandLine.Mixin
    OffloadOptions offload = new OffloadOptions();

    @Override
    public Integer call() throws IOException {
        PrintStream err = System.err;
        if (!Files.isRegularFile(input)) {
            err.println("generate: input file " + input + " does not exist");
            return 2;
        }
        SamplingParams defaults = new SamplingParams(maxNewTokens, temperature, topP, topK, seed, stop);
        long started = System.nanoTime();
        int lines = 0;
        int errors = 0;
        long generatedTokens = 0;
        Placement placement = offload.offloading() ? offload.placement() : null;
        try (Generator generator = Engines.open(model, threads > 0 ? new CpuKernels(threads) : new CpuKernels(),
                EngineOptions.defaults().withMaxBatchSize(batchSize).withCompressWeight(offload.compressWeight())
                        .withFp16Weights(offload.fp16Weights),
                placement,
                placement == null ? null : offload.tiers());
             BufferedReader reader = Files.newBufferedReader(input, StandardCharsets.UTF_8);
             BufferedWriter writer = Files.newBufferedWriter(output, StandardCharsets.UTF_8)) {
            err.printf("generate: model %s (context %d tokens), %s%n", generator.modelName(),
                    generator.contextLength(), placement == null ? "in-memory engine, batch size " + batchSize
                            : "offloading engine, " + placement);
            // Work through the file a few batches at a time so a huge input never sits in memory whole.
            List<Object> chunk = new ArrayList<>();
            int chunkLines = placement == null ? batchSize * 4 : Math.max(batchSize, placement.blockSize() * 2);
            String line;
            while ((line = reader.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                lines++;
                chunk.add(prepare(generator, line, "line-" + lines, defaults));
                if (chunk.size() >= chunkLines) {
                    long[] counts = flush(generator, chunk, writer);
                    errors += (int) counts[0];
                    generatedTokens += counts[1];
                    err.printf("generate: %d lines done, %d generated tokens, %.1f tokens/s%n", lines,
                            generatedTokens, generatedTokens / seconds(started));
                }
            }
            long[] counts = flush(generator, chunk, writer);
            errors += (int) counts[0];
            generatedTokens += counts[1];
            if (generator instanceof OffloadedGenerator offloaded) {
                err.println("generate: placement realised\n" + offloaded.placementReport());
            }
        }
        double secs = seconds(started);
        err.printf("generate: %d lines, %d errors, %d generated tokens in %.2f s (%.1f tokens/s) -> %s%n", lines,
                errors, generatedTokens, secs, generatedTokens / secs, output);
        return 0;
    }

    /** A line becomes a prepared prompt or an error line, kept in input order. */
    private static Object prepare(Generator generator, String line, String fallbackId, SamplingParams defaults) {
        try {
            GenerationRequest request = PromptLine.parse(line, fallbackId, defaults);
            try {
                return generator.prepare(request);
            } catch (InvalidRequestException e) {
                return errorLine(request.id(), e.reason().name().toLowerCase() + ": " + e.getMessage());
            }
        } catch (PromptLine.BadLineException e) {
            return errorLine(e.id(), e.getMessage());
        }
    }

    /** Generates the prepared prompts of a chunk and writes every line in order; returns {errors, tokens}. */
    private static long[] flush(Generator generator, List<Object> chunk, BufferedWriter writer) throws IOException {
        List<PreparedPrompt> prompts = new ArrayList<>();
        for (Object o : chunk) {
            if (o instanceof PreparedPrompt p) {
                prompts.add(p);
            }
        }
        List<GenerationResult> results = prompts.isEmpty() ? List.of()
                : generator.generate(prompts, GenerationListener.NONE);
        int next = 0;
        long errors = 0;
        long tokens = 0;
        for (Object o : chunk) {
            ObjectNode out;
            if (o instanceof PreparedPrompt) {
                GenerationResult r = results.get(next++);
                out = JSON.createObjectNode();
                out.put("id", r.id());
                out.put("text", r.text());
                var ids = out.putArray("token_ids");
                for (int id : r.tokenIds()) {
                    ids.add(id);
                }
                out.put("prompt_tokens", r.promptTokens());
                out.put("finish_reason", r.finishReason().wireName());
                tokens += r.tokenIds().length;
            } else {
                out = (ObjectNode) o;
                errors++;
            }
            writer.write(JSON.writeValueAsString(out));
            writer.newLine();
        }
        writer.flush();
        chunk.clear();
        return new long[] {errors, tokens};
    }

    private static ObjectNode errorLine(String id, String message) {
        ObjectNode node = JSON.createObjectNode();
        node.put("id", id);
        node.put("error", message);
        return node;
    }

    private static double seconds(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }
}
