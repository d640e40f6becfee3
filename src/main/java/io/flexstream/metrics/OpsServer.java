package io.flexstream.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.BooleanSupplier;

/**
 * The operations endpoints of a process, on the JDK's own HTTP server (no web framework for four routes):
 * {@code GET /metrics} (Prometheus text format), {@code GET /health/live} and {@code GET /health/ready} (200 or 503,
 * for Kubernetes probes), plus whatever routes the owner adds ({@link #route}; the view adds its API here).
 *
 * <p>Liveness and readiness are suppliers so they are evaluated at probe time: liveness says the process is not
 * wedged (a failed probe restarts the container), readiness says it is doing its job (consuming in the group, or the
 * Streams app is RUNNING). A GPU node loading its model is live but not ready.
 */
public final class OpsServer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(OpsServer.class);

    private final HttpServer server;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private volatile BooleanSupplier live = () -> true;
    private volatile BooleanSupplier ready = () -> false;

    private OpsServer(HttpServer server, PrometheusMeterRegistry registry) {
        this.server = server;
        server.setExecutor(executor);
        route("/metrics", ex -> respond(ex, 200, "text/plain; version=0.0.4; charset=utf-8", registry.scrape()));
        route("/health/live", ex -> health(ex, live.getAsBoolean()));
        route("/health/ready", ex -> health(ex, ready.getAsBoolean()));
    }

    /** Binds {@code port} on all interfaces (0: any free port) and starts serving. */
    public static OpsServer start(int port, PrometheusMeterRegistry registry) {
        try {
            HttpServer server = HttpServer.create(new InetSocketAddress(port), 64);
            OpsServer ops = new OpsServer(server, registry);
            server.start();
            LOG.info("metrics and health on http://0.0.0.0:{}/metrics, /health/live, /health/ready", ops.port());
            return ops;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot listen on port " + port + " for metrics and health", e);
        }
    }

    public OpsServer health(BooleanSupplier isLive, BooleanSupplier isReady) {
        this.live = isLive;
        this.ready = isReady;
        return this;
    }

    /** Serves {@code path} and everything below it; only GET is allowed, anything else is a 405. */
    public void route(String path, Route handler) {
        server.createContext(path, exchange -> {
            try (exchange) {
                if (!exchange.getRequestMethod().equals("GET")) {
                    respond(exchange, 405, "text/plain", "GET only\n");
                    return;
                }
                handler.handle(exchange);
            } catch (RuntimeException e) {
                LOG.warn("{} {} failed: {}", exchange.getRequestMethod(), exchange.getRequestURI(), e.toString());
                try {
                    respond(exchange, 500, "text/plain", "internal error: " + e.getMessage() + "\n");
                } catch (IOException | RuntimeException ignored) {
                    // the response had already started; nothing more to tell the client
                }
            }
        });
    }

    /** The port actually bound. */
    public int port() {
        return server.getAddress().getPort();
    }

    @Override
    public void close() {
        server.stop(0);
        executor.close();
    }

    /** A GET handler; the exchange is closed by the server. */
    @FunctionalInterface
    public interface Route {
        void handle(HttpExchange exchange) throws IOException;
    }

    public static void respond(HttpExchange exchange, int status, String contentType, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", contentType);
        exchange.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
        if (bytes.length > 0) {
            exchange.getResponseBody().write(bytes);
        }
    }

    private static void health(HttpExchange exchange, boolean ok) throws IOException {
        respond(exchange, ok ? 200 : 503, "application/json", ok ? "{\"status\":\"UP\"}\n" : "{\"status\":\"DOWN\"}\n");
    }
}
