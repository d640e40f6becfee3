package io.flexstream.stream;

import io.flexstream.stream.avro.Completion;
import io.flexstream.cli.FlexStreamCli;
import io.flexstream.model.OptConfig;
import io.flexstream.model.TinyModel;
import io.flexstream.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code flexstream serve} with the real engine on a tiny generated OPT model runs in a separate JVM and is killed
 * with SIGKILL while it generates (with work buffered the engine runs blocks back to back, so a kill after the first
 * completions lands inside one), then a fresh one takes over and is finally stopped with SIGTERM.
 * Every prompt ends with at least one completion, and the duplicates are at most the records the dead process had
 * polled but not committed (bounded by {@code max.buffered} plus one poll and one commit interval of finished ones).
 */
@Timeout(300)
class CrashKafkaTest {

    private static EmbeddedKafkaBroker broker;
    private static Path model;

    @BeforeAll
    static void startBrokerAndWriteModel() throws Exception {
        broker = EmbeddedKafkaBroker.builder().start();
        model = Files.createTempDirectory("flexstream-crash-model-").resolve("tiny-opt");
        TinyModel.write(model, OptConfig.tiny(64, 2, 4, OptConfig.DEFAULT_VOCAB_SIZE), 7L, DType.F32);
    }

    @AfterAll
    static void stopBroker() {
        broker.close();
    }

    /** {@code flexstream serve} in its own JVM, with the launcher's JVM flags. */
    private static Process startConsumer(String in, String out, String group, Path log) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Dorg.apache.avro.SERIALIZABLE_PACKAGES=io.flexstream", "-Xmx1g", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"), FlexStreamCli.class.getName(),
                "serve", "--bootstrap-servers", broker.bootstrapServers(), "--model", model.toString(),
                "--input-topic", in, "--output-topic", out, "--group-id", group,
                "--batch-size", "4", "--linger-ms", "50", "--max-new-tokens", "24"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("FLEXSTREAM_COMMIT_INTERVAL_MS", "100");
        pb.environment().put("FLEXSTREAM_SHUTDOWN_TIMEOUT_MS", "20000");
        return pb.start();
    }

    @Test
    void killedMidBlockThenRestartedLosesNothing() throws Exception {
        String in = "crash-prompts";
        String out = "crash-completions";
        String group = "crash";
        broker.createTopics(Map.of(in, 2, out, 2, in + ".DLT", 1));
        List<String> ids = IntStream.range(0, 40).mapToObj(i -> "c" + i).toList();
        KafkaTestSupport.produceJson(broker.bootstrapServers(), in, ids, 24);
        Path logs = Files.createTempDirectory("flexstream-crash-");

        Process victim = startConsumer(in, out, group, logs.resolve("victim.log"));
        int beforeKill;
        Map<Integer, Long> committedAtKill;
        try {
            assertTrue(KafkaTestSupport.eventually(Duration.ofSeconds(90), () -> KafkaTestSupport.readCompletions(
                            broker.bootstrapServers(), out, 12, Duration.ofMillis(500)).size() >= 12),
                    "the first consumer completes some prompts; log: " + logs.resolve("victim.log"));
            Thread.sleep(200);     // work is buffered, so the engine is inside a block
        } finally {
            victim.destroyForcibly();   // SIGKILL: no shutdown hook, no final commit
            victim.waitFor(10, TimeUnit.SECONDS);
        }
        committedAtKill = KafkaTestSupport.committed(broker.bootstrapServers(), group);
        beforeKill = KafkaTestSupport.readCompletions(broker.bootstrapServers(), out, ids.size() * 2,
                Duration.ofSeconds(2)).size();
        assertTrue(beforeKill < ids.size(), "killed before the end (" + beforeKill + " completions)");

        Process successor = startConsumer(in, out, group, logs.resolve("successor.log"));
        try {
            List<Completion> completions = KafkaTestSupport.readCompletionsFor(broker.bootstrapServers(), out,
                    Set.copyOf(ids), Duration.ofSeconds(150));
            assertEquals(Set.copyOf(ids), completions.stream().map(Completion::getId).collect(Collectors.toSet()),
                    "every prompt completed at least once; logs in " + logs);
            long duplicates = completions.size() - ids.size();
            // Completions the victim published for offsets at or past its last commit: exactly what can repeat.
            long uncommittedButPublished = completions.subList(0, beforeKill).stream()
                    .filter(c -> c.getSourceOffset() >= committedAtKill.getOrDefault(c.getSourcePartition(), 0L))
                    .count();
            System.out.printf("crash: %d completions before the kill, committed at kill %s, %d duplicates "
                    + "(%d published but uncommitted at the kill)%n", beforeKill, committedAtKill, duplicates,
                    uncommittedButPublished);
            assertTrue(duplicates <= uncommittedButPublished, "duplicates " + duplicates);
            assertTrue(uncommittedButPublished <= 8 + 8 + 4, "in flight at the kill: " + uncommittedButPublished);
        } finally {
            successor.destroy();      // SIGTERM: the graceful path
            assertTrue(successor.waitFor(40, TimeUnit.SECONDS), "graceful shutdown on SIGTERM");
        }
        Map<Integer, Long> end = KafkaTestSupport.endOffsets(broker.bootstrapServers(), in, 2);
        assertEquals(end, KafkaTestSupport.committed(broker.bootstrapServers(), group),
                "the graceful shutdown committed everything");
        for (File f : logs.toFile().listFiles()) {
            f.deleteOnExit();
        }
    }
}
