package io.flexstream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flexstream.model.OptConfig;
import io.flexstream.model.TinyModel;
import io.flexstream.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code flexstream generate} end to end: good lines complete, bad lines become error lines, order is kept. */
class GenerateCommandTest {

    @TempDir
    static Path dir;
    static Path model;

    @BeforeAll
    static void writeModel() {
        model = dir.resolve("tiny");
        TinyModel.write(model, OptConfig.tiny(32, 1, 2, 50272), 5, DType.F32);
    }

    private static List<JsonNode> run(Path input, String... extra) throws Exception {
        Path output = input.resolveSibling(input.getFileName() + ".out");
        List<String> args = new ArrayList<>(List.of("generate", "--model", model.toString(), "--input",
                input.toString(), "--output", output.toString()));
        args.addAll(List.of(extra));
        assertEquals(0, FlexStreamCli.commandLine().execute(args.toArray(String[]::new)));
        ObjectMapper json = new ObjectMapper();
        List<JsonNode> lines = new ArrayList<>();
        for (String line : Files.readAllLines(output)) {
            lines.add(json.readTree(line));
        }
        return lines;
    }

    @Test
    void completesGoodLinesAndAnswersBadOnesWithAnErrorLine() throws Exception {
        Path input = dir.resolve("prompts.jsonl");
        Files.write(input, List.of(
                "{\"id\":\"a\",\"prompt\":\"Hello, my name is\",\"max_new_tokens\":5}",
                "not json at all",
                "{\"id\":\"b\",\"prompt_token_ids\":[2,100,200],\"max_new_tokens\":3}",
                "{\"id\":\"c\",\"prompt\":\"\"}",
                "{\"id\":\"d\",\"prompt\":\"Hi\",\"temperature\":-2}",
                "",
                "{\"id\":\"e\",\"prompt\":\"Sampled\",\"temperature\":0.7,\"top_p\":0.9,\"seed\":3}"));
        List<JsonNode> out = run(input, "--max-new-tokens", "4");
        assertEquals(6, out.size());
        assertEquals("a", out.get(0).get("id").asText());
        assertEquals(5, out.get(0).get("token_ids").size());
        assertEquals("length", out.get(0).get("finish_reason").asText());
        assertTrue(out.get(0).get("prompt_tokens").asInt() > 1);
        assertTrue(out.get(1).get("error").asText().contains("not valid JSON"));
        assertEquals(3, out.get(2).get("token_ids").size());
        assertEquals(3, out.get(2).get("prompt_tokens").asInt());
        assertTrue(out.get(3).get("error").asText().contains("empty"));
        assertTrue(out.get(4).get("error").asText().contains("temperature"));
        assertEquals("e", out.get(5).get("id").asText());
        assertEquals(4, out.get(5).get("token_ids").size(), "the --max-new-tokens default applies");
    }

    @Test
    void offloadingFlagsGiveTheSameTokens() throws Exception {
        Path input = dir.resolve("same.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            lines.add("{\"id\":\"" + i + "\",\"prompt\":\"" + "word ".repeat(i + 1) + "\",\"max_new_tokens\":4}");
        }
        Files.write(input, lines);
        List<JsonNode> plain = run(input);
        List<JsonNode> offloaded = run(input, "--percent", "20", "30", "0", "50", "0", "100", "--gpu-batch-size", "2",
                "--num-gpu-batches", "2", "--cpu-cache-compute", "--device-mem", "256m", "--host-mem", "256m",
                "--offload-dir", dir.resolve("offload").toString());
        for (int i = 0; i < 5; i++) {
            assertEquals(plain.get(i).get("token_ids"), offloaded.get(i).get("token_ids"));
        }
    }

    /**
     * --compress-weight and --compress-cache (flags, or fields of the --policy file): the in-memory and the offloading
     * engine give the same tokens, and the compressed weights are cached under --weight-cache-dir.
     */
    @Test
    void compressionFlagsGiveTheSameTokensInMemoryAndOffloaded() throws Exception {
        Path input = dir.resolve("compressed.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            lines.add("{\"id\":\"" + i + "\",\"prompt\":\"" + "token ".repeat(i + 2) + "\",\"max_new_tokens\":5}");
        }
        Files.write(input, lines);
        Path cacheDir = dir.resolve("weight-cache");
        List<JsonNode> inMemory = run(input, "--compress-weight", "--compress-cache", "--weight-cache-dir",
                cacheDir.toString());
        try (var files = Files.list(cacheDir)) {
            assertEquals(1, files.filter(f -> f.toString().endsWith("-q4g64.bin")).count(), "one cache file");
        }
        Path policy = Files.writeString(dir.resolve("policy.json"), "{\"gpu_batch_size\": 2, \"num_gpu_batches\": 2,"
                + " \"percent\": [0, 50, 0, 0, 100, 0], \"compress_weight\": true, \"compress_cache\": true}");
        List<JsonNode> offloaded = run(input, "--policy", policy.toString(), "--weight-cache-dir", cacheDir.toString(),
                "--offload-dir", dir.resolve("offload-compressed").toString(), "--device-mem", "256m");
        assertEquals(4, inMemory.size());
        for (int i = 0; i < 4; i++) {
            assertEquals(5, inMemory.get(i).get("token_ids").size(), inMemory.get(i).toString());
            assertEquals(inMemory.get(i).get("token_ids"), offloaded.get(i).get("token_ids"));
        }
    }
}
