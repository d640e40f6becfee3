package io.flexstream.stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.flexstream.cli.FlexStreamCli;
import io.flexstream.metrics.PrometheusStreamMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * No cluster runs here, so the manifests under deploy/ are kept honest statically: every YAML (multi-document too) and
 * JSON file parses; the kustomization lists files that exist; the pieces agree with each other and with the code (the
 * ConfigMap is a valid StreamConfig, probes hit the health paths on metrics.port, the grace period covers the block
 * shutdown timeout, KEDA watches the group and topic the nodes use, container args parse as flexstream commands, and
 * every metric the dashboard queries is one the nodes export).
 */
class DeployManifestsTest {

    private static final Path DEPLOY = Path.of(System.getProperty("user.dir"), "deploy");
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void everyYamlAndJsonFileParses() throws Exception {
        List<Path> files;
        try (Stream<Path> walk = Files.walk(DEPLOY)) {
            files = walk.filter(Files::isRegularFile).filter(p -> p.toString().matches(".*\\.(ya?ml|json)$"))
                    .sorted().toList();
        }
        assertTrue(files.size() >= 10, "manifests found: " + files);
        for (Path f : files) {
            List<JsonNode> docs = read(f);
            assertFalse(docs.isEmpty(), f + " is empty");
            docs.forEach(d -> assertTrue(d.isObject(), f + ": every document is a mapping"));
        }
    }

    @Test
    void kustomizationResourcesExistAndAreKubernetesObjects() throws Exception {
        JsonNode k = one("k8s/base/kustomization.yaml");
        assertEquals("Kustomization", k.required("kind").asText());
        for (JsonNode r : k.required("resources")) {
            Path file = DEPLOY.resolve("k8s/base").resolve(r.asText());
            assertTrue(Files.isRegularFile(file), "listed resource " + file);
            for (JsonNode doc : read(file)) {
                assertFalse(doc.path("apiVersion").asText().isEmpty(), file + " apiVersion");
                assertFalse(doc.path("kind").asText().isEmpty(), file + " kind");
                assertFalse(doc.path("metadata").path("name").asText().isEmpty(), file + " metadata.name");
            }
        }
    }

    @Test
    void gpuNodesAgreeWithTheirConfigAndTheCode() throws Exception {
        JsonNode cm = one("k8s/base/configmap.yaml");
        Path configFile = tmp.resolve("flexstream.yaml");
        Files.writeString(configFile, cm.at("/data/flexstream.yaml").asText());
        StreamConfig config = ConfigSources.load(configFile, Map.of(), Map.of());   // validates every key

        JsonNode deployment = one("k8s/base/flexstream-deployment.yaml");
        JsonNode pod = deployment.at("/spec/template/spec");
        JsonNode container = pod.at("/containers/0");
        assertEquals("1", container.at("/resources/limits/nvidia.com~1gpu").asText());
        assertEquals(config.metricsPort(), container.at("/ports/0/containerPort").asInt());
        assertEquals(Integer.toString(config.metricsPort()),
                deployment.at("/spec/template/metadata/annotations/prometheus.io~1port").asText());
        assertEquals("/health/live", container.at("/livenessProbe/httpGet/path").asText());
        assertEquals("/health/live", container.at("/startupProbe/httpGet/path").asText());
        assertEquals("/health/ready", container.at("/readinessProbe/httpGet/path").asText());
        long grace = pod.required("terminationGracePeriodSeconds").asLong();
        assertTrue(grace * 1000 >= config.shutdownTimeoutMs() + 30_000,
                "grace " + grace + " s must cover shutdown.timeout.ms " + config.shutdownTimeoutMs() + " + close");
        assertTrue(mountPaths(container).contains("/models") && mountPaths(container).contains("/etc/flexstream"));
        parsesAsCommand(container.required("args"));

        Map<String, String> podLabels = labels(deployment.at("/spec/template/metadata/labels"));
        assertEquals(podLabels, labels(deployment.at("/spec/selector/matchLabels")));
        JsonNode pdb = one("k8s/base/flexstream-pdb.yaml");
        assertTrue(podLabels.entrySet().containsAll(labels(pdb.at("/spec/selector/matchLabels")).entrySet()));

        JsonNode scaled = one("k8s/base/flexstream-scaledobject.yaml");
        assertEquals(deployment.at("/metadata/name").asText(), scaled.at("/spec/scaleTargetRef/name").asText());
        JsonNode trigger = scaled.at("/spec/triggers/0");
        assertEquals("kafka", trigger.required("type").asText());
        assertEquals(config.groupId(), trigger.at("/metadata/consumerGroup").asText());
        assertEquals(config.inputTopic(), trigger.at("/metadata/topic").asText());
        assertEquals(config.bootstrapServers(), trigger.at("/metadata/bootstrapServers").asText());
    }

    @Test
    void viewDeploymentAndServiceMatch() throws Exception {
        JsonNode view = one("k8s/base/view-deployment.yaml");
        JsonNode container = view.at("/spec/template/spec/containers/0");
        parsesAsCommand(container.required("args"));
        assertEquals("/health/ready", container.at("/readinessProbe/httpGet/path").asText());
        JsonNode service = one("k8s/base/view-service.yaml");
        Map<String, String> podLabels = labels(view.at("/spec/template/metadata/labels"));
        assertTrue(podLabels.entrySet().containsAll(labels(service.at("/spec/selector")).entrySet()));
        assertEquals(container.at("/ports/0/name").asText(), service.at("/spec/ports/0/targetPort").asText());
    }

    @Test
    void composeRunsTheViewAndPublishesTheMetricsPort() throws Exception {
        JsonNode services = YAML.readTree(DEPLOY.resolveSibling("docker-compose.yml").toFile()).required("services");
        parsesAsCommand(services.required("view").required("command"));
        assertEquals("9400:9400", services.at("/flexstream/ports/0").asText());
    }

    @Test
    void prometheusKeepsThePodsKustomizeLabelsAndAnnotates() throws Exception {
        JsonNode labels = one("k8s/base/kustomization.yaml").at("/labels/0");
        assertTrue(labels.path("includeTemplates").asBoolean(), "pod templates carry the part-of label");
        String partOf = labels.at("/pairs/app.kubernetes.io~1part-of").asText();
        JsonNode keep = one("prometheus/scrape-config.yaml").at("/scrape_configs/0/relabel_configs/0");
        assertEquals("__meta_kubernetes_pod_label_app_kubernetes_io_part_of", keep.at("/source_labels/0").asText());
        assertEquals(partOf, keep.required("regex").asText());
        for (String f : List.of("k8s/base/flexstream-deployment.yaml", "k8s/base/view-deployment.yaml")) {
            assertEquals("true", one(f).at("/spec/template/metadata/annotations/prometheus.io~1scrape").asText(), f);
        }
    }

    @Test
    void dashboardQueriesOnlyMetricsTheNodesExport() throws Exception {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        PrometheusStreamMetrics m = new PrometheusStreamMetrics(registry, "cpu", "opt");
        m.pollState(1, 1);
        m.offsets(Map.of(new TopicPartition("prompts", 0), new StreamMetrics.PartitionOffsets(1, 2)));
        m.commit(true);
        m.commit(false);
        m.rebalance("assigned", 1);
        m.blockStarted(4, 8, 0);
        m.blockProgress(1, 2);
        m.blockDone(4, 16, 1_000_000);
        m.deadLetter(DeadLetterReason.EMPTY_PROMPT);
        String scrape;
        try (io.flexstream.tier.Tiers tiers = new io.flexstream.tier.Tiers(1 << 20, 1 << 20,
                Files.createTempDirectory("flexstream-dashboard-"), 1 << 20, false)) {
            io.flexstream.metrics.TierGauges.bind(registry, tiers);
            scrape = registry.scrape();
        }

        JsonNode dashboard = JSON.readTree(DEPLOY.resolve("grafana/flexstream-dashboard.json").toFile());
        TreeSet<String> missing = new TreeSet<>();
        int queried = 0;
        for (JsonNode panel : dashboard.required("panels")) {
            for (JsonNode target : panel.required("targets")) {
                Matcher names = Pattern.compile("flexstream_[a-z_]+").matcher(target.required("expr").asText());
                while (names.find()) {
                    queried++;
                    if (!Pattern.compile("(?m)^" + names.group() + "[{ ]").matcher(scrape).find()) {
                        missing.add(names.group());
                    }
                }
            }
        }
        assertTrue(queried > 10);
        assertTrue(missing.isEmpty(), "dashboard queries metrics nobody exports: " + missing);
    }

    private static void parsesAsCommand(JsonNode args) {
        List<String> list = new ArrayList<>();
        args.forEach(a -> list.add(a.asText()));
        FlexStreamCli.commandLine().parseArgs(list.toArray(String[]::new));   // throws on unknown options
    }

    private static List<String> mountPaths(JsonNode container) {
        List<String> out = new ArrayList<>();
        container.path("volumeMounts").forEach(v -> out.add(v.path("mountPath").asText()));
        return out;
    }

    private static Map<String, String> labels(JsonNode node) {
        Map<String, String> out = new HashMap<>();
        node.properties().forEach(e -> out.put(e.getKey(), e.getValue().asText()));
        return out;
    }

    private static JsonNode one(String relative) throws Exception {
        List<JsonNode> docs = read(DEPLOY.resolve(relative));
        assertEquals(1, docs.size(), relative);
        return docs.getFirst();
    }

    /** Every document of a YAML file (--- separated), or the one JSON document. */
    private static List<JsonNode> read(Path file) throws Exception {
        if (file.toString().endsWith(".json")) {
            return List.of(JSON.readTree(file.toFile()));
        }
        List<JsonNode> docs = new ArrayList<>();
        try (MappingIterator<JsonNode> it = YAML.readerFor(JsonNode.class)
                .readValues(YAML.getFactory().createParser(file.toFile()))) {
            while (it.hasNext()) {
                JsonNode doc = it.next();
                if (doc != null && !doc.isNull() && !doc.isMissingNode()) {
                    docs.add(doc);
                }
            }
        }
        return docs;
    }
}
