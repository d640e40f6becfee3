package io.flexstream.view;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import io.flexstream.metrics.OpsServer;
import io.flexstream.stream.CompletionPublisher;
import io.flexstream.stream.avro.Completion;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyQueryMetadata;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsMetadata;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.HostInfo;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.ReadOnlyWindowStore;

import java.io.IOException;
import java.net.URI;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The view's HTTP API over interactive queries.
 *
 * <p>{@code GET /completions/{id}}: the first completion of a prompt id, as the JSON the nodes publish. The key's
 * partition decides which instance holds it ({@code queryMetadataForKey}); if that is another instance, the request is
 * forwarded to its {@code application.server} once (the {@value #FORWARDED} header stops a second hop while metadata
 * is in flux) and its answer relayed. 404: no completion for that id (yet); 503: the instance is rebalancing or
 * restoring, retry.
 *
 * <p>{@code GET /stats[?minutes=N]}: the statistics windows that started in the last N minutes (default 15), from
 * every instance: this one's stores plus {@code /stats?local=true} of each other instance. Windows are keyed by model
 * or reason, each held by exactly one instance, so the merge is a concatenation.
 */
final class ViewHttpApi {

    static final String FORWARDED = "X-FlexStream-Forwarded";
    static final String SERVED_BY = "X-FlexStream-Served-By";

    private final KafkaStreams streams;
    private final HostInfo self;
    private final boolean deadLetters;
    private final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    ViewHttpApi(KafkaStreams streams, HostInfo self, boolean deadLetters) {
        this.streams = streams;
        this.self = self;
        this.deadLetters = deadLetters;
    }

    void register(OpsServer server) {
        server.route("/completions/", this::completion);
        server.route("/stats", this::stats);
    }

    private void completion(HttpExchange ex) throws IOException {
        String raw = ex.getRequestURI().getRawPath().substring("/completions/".length());
        String id = URLDecoder.decode(raw, StandardCharsets.UTF_8);
        if (id.isEmpty()) {
            json(ex, 400, error("missing prompt id: GET /completions/{id}"));
            return;
        }
        boolean forwarded = ex.getRequestHeaders().getFirst(FORWARDED) != null;
        KeyQueryMetadata where = streams.queryMetadataForKey(ViewOptions.DEDUP_STORE, id, Serdes.String().serializer());
        if (where == null || where.equals(KeyQueryMetadata.NOT_AVAILABLE)) {
            json(ex, 503, error("the view is not running yet (state " + streams.state() + "); retry"));
            return;
        }
        if (!forwarded && !where.activeHost().equals(self)) {
            forward(ex, where.activeHost(), "/completions/" + URLEncoder.encode(id, StandardCharsets.UTF_8));
            return;
        }
        Completion c;
        try {
            ReadOnlyKeyValueStore<String, Completion> store = streams.store(StoreQueryParameters
                    .fromNameAndType(ViewOptions.DEDUP_STORE, QueryableStoreTypes.<String, Completion>keyValueStore())
                    .withPartition(where.partition()));
            c = store.get(id);
        } catch (InvalidStateStoreException e) {
            json(ex, 503, error("the store is migrating or restoring (" + e.getMessage() + "); retry"));
            return;
        }
        ex.getResponseHeaders().set(SERVED_BY, self.host() + ":" + self.port());
        if (c == null) {
            json(ex, 404, error("no completion for id '" + id + "'"));
        } else {
            OpsServer.respond(ex, 200, "application/json", new String(CompletionPublisher.toJson(c),
                    StandardCharsets.UTF_8));
        }
    }

    private void stats(HttpExchange ex) throws IOException {
        String query = ex.getRequestURI().getRawQuery() == null ? "" : ex.getRequestURI().getRawQuery();
        boolean local = query.contains("local=true");
        int minutes = 15;
        for (String part : query.split("&")) {
            if (part.startsWith("minutes=")) {
                try {
                    minutes = Math.clamp(Integer.parseInt(part.substring(8)), 1, 24 * 60);
                } catch (NumberFormatException e) {
                    json(ex, 400, error("minutes must be an integer"));
                    return;
                }
            }
        }
        List<JsonNode> rows;
        try {
            rows = new ArrayList<>(localStats(Instant.now().minus(Duration.ofMinutes(minutes)), Instant.now()));
        } catch (InvalidStateStoreException e) {
            json(ex, 503, error("the stores are migrating or restoring (" + e.getMessage() + "); retry"));
            return;
        }
        int instances = 1;
        List<String> unreachable = new ArrayList<>();
        if (!local) {
            for (StreamsMetadata other : streams.metadataForAllStreamsClients()) {
                if (other.hostInfo().equals(self)) {
                    continue;
                }
                instances++;
                try {
                    fetch(other.hostInfo(), "/stats?local=true&minutes=" + minutes).path("windows").forEach(rows::add);
                } catch (IOException e) {
                    // Partial statistics beat none; the answer says which instance is missing.
                    unreachable.add(other.hostInfo().host() + ":" + other.hostInfo().port());
                }
            }
        }
        rows.sort(Comparator.comparingLong((JsonNode n) -> n.path("window_start").asLong())
                .thenComparing(n -> n.path("kind").asText())
                .thenComparing(n -> n.path("model").asText() + n.path("reason").asText()));
        ObjectNode out = ViewSerdes.JSON.createObjectNode();
        out.put("instances", instances);
        out.put("minutes", minutes);
        unreachable.forEach(out.putArray("unreachable")::add);
        ArrayNode windows = out.putArray("windows");
        rows.forEach(windows::add);
        json(ex, 200, out);
    }

    /**
     * This instance's windows that started in [from, to]. A store none of whose tasks run here is skipped rather
     * than queried: Kafka Streams answers that with the same exception as a store that is migrating.
     */
    List<JsonNode> localStats(Instant from, Instant to) {
        List<JsonNode> rows = new ArrayList<>();
        if (hostsLocally(ViewOptions.STATS_STORE)) {
            ReadOnlyWindowStore<String, WindowStats> stats = streams.store(StoreQueryParameters.fromNameAndType(
                    ViewOptions.STATS_STORE, QueryableStoreTypes.<String, WindowStats>windowStore()));
            try (KeyValueIterator<Windowed<String>, WindowStats> it = stats.fetchAll(from, to)) {
                while (it.hasNext()) {
                    KeyValue<Windowed<String>, WindowStats> kv = it.next();
                    rows.add(kv.value.toJson(kv.key.key(), kv.key.window().start(), kv.key.window().end()));
                }
            }
        }
        if (deadLetters && hostsLocally(ViewOptions.DEAD_LETTER_STORE)) {
            ReadOnlyWindowStore<String, Long> counts = streams.store(StoreQueryParameters.fromNameAndType(
                    ViewOptions.DEAD_LETTER_STORE, QueryableStoreTypes.<String, Long>windowStore()));
            try (KeyValueIterator<Windowed<String>, Long> it = counts.fetchAll(from, to)) {
                while (it.hasNext()) {
                    KeyValue<Windowed<String>, Long> kv = it.next();
                    rows.add(ViewSerdes.JSON.readTree(ViewTopology.deadLetterJson(kv.key.key(),
                            kv.key.window().start(), kv.key.window().end(), kv.value)));
                }
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
        return rows;
    }

    private boolean hostsLocally(String store) {
        return streams.streamsMetadataForStore(store).stream().anyMatch(m -> m.hostInfo().equals(self));
    }

    private void forward(HttpExchange ex, HostInfo host, String path) throws IOException {
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://" + host.host() + ":" + host.port() + path))
                .header(FORWARDED, self.host() + ":" + self.port()).timeout(Duration.ofSeconds(10)).GET().build();
        try {
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
            response.headers().firstValue(SERVED_BY).ifPresent(v -> ex.getResponseHeaders().set(SERVED_BY, v));
            OpsServer.respond(ex, response.statusCode(), "application/json", response.body());
        } catch (IOException e) {
            json(ex, 502, error("instance " + host.host() + ":" + host.port() + " holding the key did not answer: "
                    + e.getMessage()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            json(ex, 503, error("interrupted"));
        }
    }

    private JsonNode fetch(HostInfo host, String path) throws IOException {
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://" + host.host() + ":" + host.port() + path))
                .timeout(Duration.ofSeconds(10)).GET().build();
        try {
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                throw new IOException("instance " + host + " answered " + response.statusCode());
            }
            return ViewSerdes.JSON.readTree(response.body());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    private static ObjectNode error(String message) {
        return ViewSerdes.JSON.createObjectNode().put("error", message);
    }

    private static void json(HttpExchange ex, int status, JsonNode body) throws IOException {
        OpsServer.respond(ex, status, "application/json", body.toString());
    }
}
