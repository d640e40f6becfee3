package io.flexstream.cli;

import io.flexstream.engine.EngineOptions;
import io.flexstream.engine.Engines;
import io.flexstream.engine.Generator;
import io.flexstream.engine.Placement;
import io.flexstream.kernel.CpuKernels;
import io.flexstream.kernel.Kernels;
import io.flexstream.kernel.cuda.CudaUnavailableException;
import io.flexstream.metrics.OpsServer;
import io.flexstream.metrics.PrometheusStreamMetrics;
import io.flexstream.metrics.TierGauges;
import io.flexstream.model.OptConfig;
import io.flexstream.policy.CostModel;
import io.flexstream.policy.HardwareProfile;
import io.flexstream.policy.ModelShape;
import io.flexstream.policy.Pins;
import io.flexstream.policy.PolicyCache;
import io.flexstream.policy.PolicySearch;
import io.flexstream.policy.Workload;
import io.flexstream.stream.BatchSizer;
import io.flexstream.stream.ConfigSources;
import io.flexstream.stream.PolicyBatchSizer;
import io.flexstream.stream.StreamConfig;
import io.flexstream.stream.StreamMetrics;
import io.flexstream.stream.StreamNode;
import io.flexstream.tier.Tiers;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code flexstream serve}: one consumer-group member turning the input topic's prompts into completions until
 * SIGTERM/SIGINT, which stops it gracefully (finish the block in flight, publish, commit, close).
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Consume prompts from Kafka and publish completions (at-least-once).",
                "Settings come from --config FILE (.properties or .yaml), then FLEXSTREAM_* environment variables "
                        + "(FLEXSTREAM_BATCH_SIZE, FLEXSTREAM_KAFKA_SECURITY_PROTOCOL, ...), then flags.",
                "Any Kafka client setting passes through as kafka.<setting> (all clients) or "
                        + "kafka.consumer.|producer.|admin.<setting>, e.g. -K security.protocol=SASL_SSL."})
public final class ServeCommand implements Callable<Integer> {

    private static final Logger LOG = LoggerFactory.getLogger(ServeCommand.class);

    @picocli.CommandLine.Mixin
    BackendOptions backendOptions = new BackendOptions();

    @Option(names = "--bootstrap-servers", paramLabel = "HOST:PORT", description = "Kafka bootstrap servers")
    String bootstrapServers;

    @Option(names = "--model", paramLabel = "DIR", description = "OPT checkpoint directory (required)")
    Path model;

    @Option(names = "--input-topic", paramLabel = "T", description = "topic of prompts")
    String inputTopic;

    @Option(names = "--output-topic", paramLabel = "T", description = "topic for completions")
    String outputTopic;

    @Option(names = "--dlt-topic", paramLabel = "T", description = "dead-letter topic (default: <input>.DLT)")
    String dltTopic;

    @Option(names = "--group-id", paramLabel = "G", description = "consumer group (default: flexstream)")
    String groupId;

    @Option(names = "--config", paramLabel = "FILE", description = "properties or YAML file of settings")
    Path configFile;

    @Option(names = "--batch-size", description = "prompts per batch (default: 8)")
    Integer batchSize;

    @Option(names = "--linger-ms", description = "longest wait for a batch to fill (default: 200)")
    Long lingerMs;

    @Option(names = "--max-buffered", description = "records buffered + in flight before pausing (default: 2 x batch)")
    Integer maxBuffered;

    @Option(names = "--output-format", paramLabel = "avro|json", description = "completion values (default: avro)")
    String outputFormat;

    @Option(names = "--max-new-tokens", description = "default when a prompt sets none (default: 32)")
    Integer maxNewTokens;

    @Option(names = "--group-protocol", paramLabel = "classic|consumer",
            description = "consumer group protocol (default: classic, cooperative-sticky)")
    String groupProtocol;

    @Option(names = "--batch-policy", paramLabel = "fixed|lp", defaultValue = "fixed",
            description = "batch sizing: fixed (--batch-size) or lp (the policy search's block size per prompt-length "
                    + "bucket, capped by --max-buffered; default: ${DEFAULT-VALUE})")
    String batchPolicy;

    @Option(names = "--hardware", paramLabel = "NAME|FILE", defaultValue = "cpu-2core-estimate",
            description = "hardware profile for --batch-policy lp, e.g. the output of `flexstream profile` "
                    + "(default: ${DEFAULT-VALUE})")
    String hardware;

    @Option(names = "--metrics-port", description = "port of /metrics, /health/live, /health/ready; 0: off "
            + "(default: 9400)")
    Integer metricsPort;

    /** Without any of these flags the node runs the in-memory engine; with them, the offloading engine. */
    @Mixin
    OffloadOptions offload = new OffloadOptions();

    @Option(names = {"-K", "--kafka"}, paramLabel = "KEY=VALUE", description = "Kafka client setting (repeatable)")
    Map<String, String> kafka = new LinkedHashMap<>();

    /**
     * @param placement the offloading engine's placement, or null for the in-memory engine. Its weights are placed
     *                  once at start, so with the LP sizer every share and the block shape are pinned to it: the
     *                  search then predicts that placement's throughput per bucket for the completion records, and
     *                  blocks are filled to the engine's gbs x nb.
     */
    private BatchSizer sizer(StreamConfig config, Placement placement, boolean cpuBackend) throws java.io.IOException {
        if (batchPolicy.equals("fixed")) {
            if (placement != null && config.batchSize() % placement.blockSize() != 0) {
                LOG.warn("batch.size {} is not a multiple of the placement's block gbs x nb = {}: some blocks will "
                        + "run partly empty; set --batch-size {}", config.batchSize(), placement.blockSize(),
                        placement.blockSize());
            }
            return BatchSizer.fixed(config.batchSize());
        }
        if (!batchPolicy.equals("lp")) {
            throw new IllegalArgumentException("--batch-policy must be fixed or lp, got " + batchPolicy);
        }
        OptConfig model = OptConfig.read(config.modelDir().resolve("config.json"));
        Path name = config.modelDir().toAbsolutePath().normalize().getFileName();
        // The engine keeps fp32 on either backend: the cost model counts 4 bytes per element. Only the CPU backend
        // fuses the decode of a block held wholly on the device, and only there do the disk cache's requests take
        // the compute cores.
        CostModel.Calibration fp32 = CostModel.Calibration.FP32;
        CostModel cost = new CostModel(HardwareProfile.load(hardware), CostModel.Mode.FLEXSTREAM,
                CostModel.DEFAULT_ALPHA, cpuBackend ? fp32
                        : new CostModel.Calibration(fp32.compressedBytesPerElement(), fp32.elementBytes(), false,
                                false));
        Workload template = new Workload(ModelShape.of(name == null ? "model" : name.toString(), model), 1,
                config.maxNewTokens(), offload.compressWeight(), offload.compressCache(), false);
        Pins pins = Pins.NONE;
        if (placement != null) {
            pins = pins.withGpuBatchSize(placement.gpuBatchSize()).withNumGpuBatches(placement.numGpuBatches())
                    .withPercent(new double[] {100 * placement.weights().device(), 100 * placement.weights().host(),
                            100 * placement.cache().device(), 100 * placement.cache().host(),
                            100 * placement.activations().device(), 100 * placement.activations().host()});
        }
        PolicyCache cache = new PolicyCache(new PolicySearch(cost), template, pins, 64, 16);
        return new PolicyBatchSizer(cache, config.maxNewTokens(), config.maxBuffered());
    }

    @Override
    public Integer call() throws Exception {
        StreamConfig config;
        try {
            config = ConfigSources.load(configFile, System.getenv(), flags());
            if (config.modelDir() == null) {
                throw new IllegalArgumentException("--model is required: the OPT checkpoint directory to serve "
                        + "(or model.dir in --config, or FLEXSTREAM_MODEL_DIR)");
            }
        } catch (IllegalArgumentException e) {
            System.err.println("flexstream serve: " + e.getMessage());
            return 2;
        }
        Placement placement;
        try {
            placement = offload.offloading() ? offload.placement() : null;
        } catch (RuntimeException e) {
            System.err.println("flexstream serve: " + e.getMessage());
            return 2;
        }
        // The endpoints come up before the model loads (minutes for a large checkpoint): live but not ready meanwhile,
        // so a Kubernetes liveness probe does not restart a node that is still reading weights.
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        new JvmMemoryMetrics().bindTo(registry);
        OpsServer ops = config.metricsPort() == 0 ? null : OpsServer.start(config.metricsPort(), registry);
        Kernels kernels;
        try {
            kernels = backendOptions.kernels(0, offload.deviceMem, placement != null,
                    line -> System.err.println("flexstream serve: " + line));
        } catch (CudaUnavailableException e) {
            System.err.println("flexstream serve: " + e.getMessage());
            if (ops != null) {
                ops.close();
            }
            return 2;
        }
        BatchSizer sizer;
        try {
            sizer = sizer(config, placement, kernels instanceof CpuKernels);
        } catch (java.io.IOException | RuntimeException e) {
            System.err.println("flexstream serve: cannot set up --batch-policy " + batchPolicy + ": " + e.getMessage());
            if (ops != null) {
                ops.close();
            }
            return 2;
        }
        Generator generator;
        Tiers tiers = null;
        String backend = kernels.name();
        try {
            tiers = placement == null ? null : offload.tiers();
            generator = Engines.open(config.modelDir(), kernels, offload.engineOptions(EngineOptions.defaults()
                    .withMaxBatchSize(Math.max(config.batchSize(), config.maxBuffered()))), placement, tiers);
        } catch (java.io.IOException | RuntimeException e) {
            if (tiers != null) {
                tiers.close();
            }
            System.err.println("flexstream serve: cannot load the model: " + e.getMessage());
            if (ops != null) {
                ops.close();
            }
            return 2;
        }
        try (generator; ops) {
            LOG.info("engine: {} on {}", placement == null ? "in-memory" : "offloading, " + placement, backend);
            StreamMetrics metrics = new PrometheusStreamMetrics(registry, backend, generator.modelName());
            if (tiers != null) {
                TierGauges.bind(registry, tiers);
            }
            StreamNode node = StreamNode.start(config, generator, sizer, metrics);
            if (ops != null) {
                ops.health(() -> node.isLive(60_000), node::isReady);
            }
            Thread hook = new Thread(node::close, "flexstream-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            node.awaitTermination();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
                node.close();       // the poll thread ended on its own (engine failure): release the producer
            } catch (IllegalStateException shuttingDown) {
                // the hook is running and closes the node
            }
        }
        return 0;
    }

    private Map<String, String> flags() {
        Map<String, String> f = new LinkedHashMap<>();
        f.put("bootstrap.servers", bootstrapServers);
        f.put("model.dir", model == null ? null : model.toString());
        f.put("input.topic", inputTopic);
        f.put("output.topic", outputTopic);
        f.put("dlt.topic", dltTopic);
        f.put("group.id", groupId);
        f.put("batch.size", batchSize == null ? null : batchSize.toString());
        f.put("linger.ms", lingerMs == null ? null : lingerMs.toString());
        f.put("max.buffered", maxBuffered == null ? null : maxBuffered.toString());
        f.put("output.format", outputFormat);
        f.put("max.new.tokens", maxNewTokens == null ? null : maxNewTokens.toString());
        f.put("group.protocol", groupProtocol);
        f.put("metrics.port", metricsPort == null ? null : metricsPort.toString());
        kafka.forEach((k, v) -> f.put("kafka." + k, v));
        return f;
    }
}
