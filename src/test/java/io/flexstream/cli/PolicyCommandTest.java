package io.flexstream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PolicyCommandTest {

    record Run(int exit, String out, String err) {
    }

    static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = new CommandLine(new PolicyCommand()).setOut(new PrintWriter(out)).setErr(new PrintWriter(err)).execute(args);
        return new Run(exit, out.toString(), err.toString());
    }

    @Test
    void jsonReproducesFlexGensOpt30bSearch() throws Exception {
        Run r = run("--model", "opt-30b", "--prompt-len", "512", "--gen-len", "32", "--hardware", "t4-flexgen",
                "--cost-mode", "flexgen", "--json");
        assertEquals(0, r.exit(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(32, j.get("gpu_batch_size").asInt());
        assertEquals(5, j.get("num_gpu_batches").asInt());
        assertEquals(6, j.get("percent").size());
        assertEquals(100, j.get("percent").get(3).asDouble(), 1e-6);   // cache 100% on the host
        assertTrue(j.get("percent").get(1).asDouble() > 1, "percent, not fractions: " + j.get("percent"));
        assertEquals(7.08, j.get("throughput_tokens_per_s").asDouble(), 0.0708);
        assertTrue(j.get("cpu_cache_compute").asBoolean());
    }

    @Test
    void tableShowsPolicyTimesThroughputAndMemory() {
        Run r = run("--model", "opt-6.7b", "--prompt-len", "512", "--gen-len", "32", "--cost-mode", "flexgen");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("gpu batch size 64 x 9 gpu batches"), r.out());
        assertTrue(r.out().contains("--percent        60 40 0 95.32 0 100"), r.out());
        assertTrue(r.out().contains("throughput       28.18 tokens/s"), r.out());
        assertTrue(r.out().contains("prefill") && r.out().contains("decode") && r.out().contains("device"), r.out());
    }

    @Test
    void pinsAndFlexStreamMode() throws Exception {
        Run r = run("--model", "opt-30b", "--prompt-len", "256", "--gen-len", "16", "--gpu-batch-size", "8",
                "--pin", "wn=20", "--compress-weight", "--json");
        assertEquals(0, r.exit(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(8, j.get("gpu_batch_size").asInt());
        assertEquals(80, j.get("percent").get(0).asDouble() + j.get("percent").get(1).asDouble(), 1e-3);
        assertEquals("flexstream", j.get("cost_mode").asText());
        assertTrue(j.get("compress_weight").asBoolean());
    }

    @Test
    void infeasibleNamesTheConstraintAndExitsTwo() {
        Run r = run("--model", "opt-175b", "--prompt-len", "512", "--gen-len", "32", "--percent", "100", "0", "0", "100", "0", "100");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("GPU memory in"), r.err());
        assertTrue(r.err().contains("capacity 15 GB x alpha 0.8"), r.err());
    }

    @Test
    void badInputIsAUsageError() {
        assertEquals(2, run("--model", "opt-7b", "--prompt-len", "5", "--gen-len", "5").exit());
        Run bad = run("--model", "opt-30b", "--prompt-len", "5", "--gen-len", "5", "--pin", "xx=5");
        assertTrue(bad.err().contains("not a share"), bad.err());
    }

    @Test
    void checkpointDirectory(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("config.json"), """
                {"model_type": "opt", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                 "ffn_dim": 3072, "vocab_size": 50272}
                """);
        Run r = run("--model", dir.toString(), "--prompt-len", "128", "--gen-len", "32", "--json");
        assertEquals(0, r.exit(), r.err());
        assertTrue(new ObjectMapper().readTree(r.out()).get("throughput_tokens_per_s").asDouble() > 0);
    }

    @Test
    void generateReadsThePolicyJson(@TempDir Path dir) throws Exception {
        // `flexstream policy --json > p.json; flexstream generate --policy p.json ...` is the hand-off to the engine.
        Run r = run("--model", "opt-30b", "--prompt-len", "512", "--gen-len", "32", "--cost-mode", "flexgen", "--json");
        Path file = dir.resolve("policy.json");
        Files.writeString(file, r.out());
        OffloadOptions options = new OffloadOptions();
        options.policyFile = file;
        io.flexstream.engine.Placement placement = options.placement();
        assertEquals(32, placement.gpuBatchSize());
        assertEquals(5, placement.numGpuBatches());
        assertEquals(0, placement.cache().device(), 1e-9);
        assertEquals(1, placement.cache().host(), 1e-9);
        assertEquals(0.1091, placement.weights().device(), 0.001);
        assertTrue(placement.cpuCacheCompute());
    }
}
