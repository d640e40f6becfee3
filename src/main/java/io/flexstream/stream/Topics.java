package io.flexstream.stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;

/** Creating topics on any cluster through the admin client, treating "already exists" as done. */
public final class Topics {

    private Topics() {
    }

    /**
     * Creates each topic with its partition count and the cluster's default replication factor (1 on the embedded
     * broker), and waits for the cluster to confirm.
     *
     * @throws IllegalStateException naming the topics when the cluster refuses one for another reason than that it
     *                               exists
     */
    public static void create(String bootstrapServers, Map<String, Integer> partitionsByTopic) {
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrapServers))) {
            List<NewTopic> topics = partitionsByTopic.entrySet().stream()
                    .map(e -> new NewTopic(e.getKey(), Optional.of(e.getValue()), Optional.empty())).toList();
            for (var f : admin.createTopics(topics).values().values()) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw new IllegalStateException("cannot create topics " + partitionsByTopic.keySet()
                                + " on " + bootstrapServers + ": " + e.getCause().getMessage(), e);
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
