package io.flexstream.stream;

import io.flexstream.cli.FlexStreamCli;
import io.flexstream.engine.GenerationRequest;
import io.flexstream.engine.GenerationResult;
import io.flexstream.engine.Generator;
import io.flexstream.engine.OptGenerator;
import io.flexstream.engine.SamplingParams;
import io.flexstream.model.OptConfig;
import io.flexstream.model.TinyModel;
import io.flexstream.stream.avro.Completion;
import io.flexstream.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code flexstream serve} with FlexGen's placement flags runs the offloading engine (weights split over the device,
 * host and disk tiers, the KV cache on the host): its completions carry the same tokens as the in-memory engine on
 * the same prompts, and /metrics reports the tiers' bytes. Runs in its own JVM because serve blocks until SIGTERM.
 */
@Timeout(240)
class ServeOffloadedKafkaTest {

    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @Test
    void offloadedServeMatchesTheInMemoryEngineAndReportsTierBytes() throws Exception {
        Path dir = Files.createTempDirectory("flexstream-serve-offload-");
        Path model = dir.resolve("tiny-opt");
        TinyModel.write(model, OptConfig.tiny(64, 2, 4, OptConfig.DEFAULT_VOCAB_SIZE), 11L, DType.F32);
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (EmbeddedKafkaBroker broker = EmbeddedKafkaBroker.builder().start()) {
            String in = "offload-prompts";
            String out = "offload-completions";
            broker.createTopics(Map.of(in, 2, out, 2, in + ".DLT", 1));
            List<String> ids = IntStream.range(0, 10).mapToObj(i -> "o" + i).toList();
            KafkaTestSupport.produceJson(broker.bootstrapServers(), in, ids, 12);

            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                            .toString(), "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                    "-Dorg.apache.avro.SERIALIZABLE_PACKAGES=io.flexstream", "-Xmx1g", "-XX:+UseSerialGC",
                    "-cp", System.getProperty("java.class.path"), FlexStreamCli.class.getName(),
                    "serve", "--bootstrap-servers", broker.bootstrapServers(), "--model", model.toString(),
                    "--input-topic", in, "--output-topic", out, "--group-id", "offload",
                    "--batch-size", "4", "--linger-ms", "50", "--metrics-port", Integer.toString(port),
                    "--percent", "20", "30", "0", "100", "100", "0", "--gpu-batch-size", "2",
                    "--num-gpu-batches", "2", "--device-mem", "64m", "--host-mem", "256m",
                    "--offload-dir", dir.resolve("spill").toString()));
            Path log = dir.resolve("serve.log");
            Process serve = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            try {
                List<Completion> completions = KafkaTestSupport.readCompletionsFor(broker.bootstrapServers(), out,
                        Set.copyOf(ids), Duration.ofSeconds(150));
                String logText = Files.readString(log);
                assertTrue(logText.contains("engine: offloading"), logText);

                String metrics = HTTP.send(HttpRequest.newBuilder(URI.create("http://localhost:" + port
                        + "/metrics")).GET().build(), HttpResponse.BodyHandlers.ofString()).body();
                assertTrue(value(metrics, "flexstream_tier_bytes_in_use_bytes", "tier=\"disk\"") > 0, metrics);
                assertTrue(value(metrics, "flexstream_tier_bytes_in_use_bytes", "tier=\"device\"") > 0, metrics);
                assertTrue(value(metrics, "flexstream_tier_peak_bytes", "tier=\"host\"") > 0, metrics);
                assertEquals(64L << 20, (long) value(metrics, "flexstream_tier_budget_bytes", "tier=\"device\""));

                try (Generator reference = OptGenerator.load(model)) {
                    for (Completion c : completions) {
                        GenerationResult expected = reference.generate(List.of(reference.prepare(
                                GenerationRequest.text(c.getId(), "prompt number " + c.getId(),
                                        SamplingParams.greedy(12))))).getFirst();
                        assertEquals(toList(expected.tokenIds()), c.getTokenIds(), "tokens of " + c.getId());
                    }
                }
            } finally {
                serve.destroy();
                assertTrue(serve.waitFor(40, TimeUnit.SECONDS), "graceful shutdown on SIGTERM");
            }
        }
    }

    private static List<Integer> toList(int[] ids) {
        return java.util.Arrays.stream(ids).boxed().toList();
    }

    /** Sum of every sample of {@code name} whose labels contain {@code label}. */
    private static double value(String scrape, String name, String label) {
        double sum = 0;
        Matcher m = Pattern.compile("(?m)^" + name + "(\\{[^}]*})? (\\S+)$").matcher(scrape);
        while (m.find()) {
            if (m.group(1) != null && m.group(1).contains(label)) {
                sum += Double.parseDouble(m.group(2));
            }
        }
        return sum;
    }
}
