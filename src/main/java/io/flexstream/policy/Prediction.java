package io.flexstream.policy;

import java.util.Map;

/**
 * What the cost model predicts for one policy.
 *
 * @param prefillSecondsPerLayer one layer's prefill of the whole block, seconds
 * @param decodeSecondsPerLayer  one layer's decode step of the whole block (one token), seconds
 * @param totalSeconds           {@code l Tpre + l (n - 1) Tgen}: the whole block, seconds
 * @param throughput             generated tokens per second: {@code gbs nb n / total} (FlexGen's accounting)
 * @param peakDeviceBytes        max of the device rows (prefill, decode), bytes
 * @param peakHostBytes          max of the host rows, bytes
 * @param diskBytes              the disk row, bytes
 * @param memoryRows             every memory row's value by name, bytes
 */
public record Prediction(double prefillSecondsPerLayer, double decodeSecondsPerLayer, double totalSeconds,
                         double throughput, double peakDeviceBytes, double peakHostBytes, double diskBytes,
                         Map<String, Double> memoryRows) {

    public Prediction {
        memoryRows = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(memoryRows));
    }
}
