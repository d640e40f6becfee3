package io.flexstream.stream;

import java.util.Map;

/**
 * A consumer node in its own JVM, for the crash test: {@code bootstrap input output group blockMillis}. It runs the
 * echo generator with the given block time until killed; SIGTERM stops it gracefully through the shutdown hook.
 */
public final class ConsumerProcessMain {

    private ConsumerProcessMain() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> raw = KafkaTestSupport.config(args[0], args[1], args[2], args[3]);
        raw.put("commit.interval.ms", "100");
        StreamConfig config = StreamConfig.fromMap(raw);
        StreamNode node = StreamNode.start(config, new EchoGenerator(256, Long.parseLong(args[4]), null),
                BatchSizer.fixed(4));
        Runtime.getRuntime().addShutdownHook(new Thread(node::close, "flexstream-shutdown"));
        System.out.println("STARTED");
        node.awaitTermination();
    }
}
