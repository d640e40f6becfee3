package io.flexstream.stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docker-compose.yml and deploy/Dockerfile cannot run here (no Docker engine), so this keeps them honest: the compose
 * file parses as YAML and wires broker, topic creation and a GPU FlexStream node the way the README says.
 */
class DeploymentFilesTest {

    private static final Path ROOT = Path.of(System.getProperty("user.dir"));

    @Test
    void composeFileDescribesBrokerTopicsAndAGpuNode() throws Exception {
        JsonNode compose = new ObjectMapper(new YAMLFactory()).readTree(ROOT.resolve("docker-compose.yml").toFile());
        JsonNode services = compose.required("services");

        JsonNode kafka = services.required("kafka");
        assertTrue(kafka.required("image").asText().startsWith("apache/kafka:"));
        JsonNode env = kafka.required("environment");
        assertEquals("broker,controller", env.required("KAFKA_PROCESS_ROLES").asText());
        assertEquals("1", env.required("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR").asText());
        assertEquals("1", env.required("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR").asText());

        JsonNode topics = services.required("topics");
        assertEquals("service_healthy", topics.required("depends_on").required("kafka").required("condition").asText());
        String script = topics.required("command").get(0).asText();
        assertTrue(script.contains("prompts.DLT") && script.contains("completions") && script.contains("--create"));

        JsonNode node = services.required("flexstream");
        assertEquals("deploy/Dockerfile", node.required("build").required("dockerfile").asText());
        assertTrue(Files.isRegularFile(ROOT.resolve("deploy/Dockerfile")));
        assertEquals("service_completed_successfully",
                node.required("depends_on").required("topics").required("condition").asText());
        List<String> command = new ArrayList<>();
        node.required("command").forEach(c -> command.add(c.asText()));
        assertEquals("serve", command.getFirst());
        for (String flag : List.of("--bootstrap-servers", "--model", "--input-topic", "--output-topic")) {
            assertTrue(command.contains(flag), flag);
        }
        JsonNode device = node.at("/deploy/resources/reservations/devices/0");
        assertEquals("nvidia", device.required("driver").asText());
        assertEquals("gpu", device.required("capabilities").get(0).asText());
    }

    @Test
    void dockerfileBuildsWithTheWrapperOnTemurin25AndRunsServe() throws Exception {
        List<String> lines = Files.readAllLines(ROOT.resolve("deploy/Dockerfile"));
        List<String> from = lines.stream().filter(l -> l.startsWith("FROM ")).toList();
        assertEquals(2, from.size());
        from.forEach(l -> assertTrue(l.startsWith("FROM eclipse-temurin:25"), l));
        assertTrue(lines.stream().anyMatch(l -> l.contains("./mvnw") && l.contains("package")));
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("ENTRYPOINT [\"/app/flexstream\"]")));
    }
}
