package io.flexstream.cli;

import io.flexstream.stream.EmbeddedKafkaBroker;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code flexstream broker}: a real single-node KRaft Kafka broker in this process, until interrupted. */
@Command(name = "broker", mixinStandardHelpOptions = true,
        description = "Run a single-node Kafka broker (KRaft) in-process for local use; Ctrl-C stops it.")
public final class BrokerCommand implements Callable<Integer> {

    @Option(names = "--port", description = "client port (default: 9092; 0 picks a free one)")
    int port = 9092;

    @Option(names = "--data-dir", paramLabel = "DIR",
            description = "keep the log here across restarts (default: a temporary directory, deleted on exit)")
    Path dataDir;

    @Override
    public Integer call() throws Exception {
        EmbeddedKafkaBroker.Builder builder = EmbeddedKafkaBroker.builder().port(port);
        if (dataDir != null) {
            builder.dataDir(dataDir);
        }
        EmbeddedKafkaBroker broker = builder.start();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            broker.close();
            stopped.countDown();
        }, "flexstream-broker-shutdown"));
        System.out.println("Kafka broker running; bootstrap servers: " + broker.bootstrapServers());
        System.out.println("data directory: " + broker.dataDir() + (dataDir == null ? " (deleted on exit)" : ""));
        System.out.flush();
        stopped.await();
        return 0;
    }
}
