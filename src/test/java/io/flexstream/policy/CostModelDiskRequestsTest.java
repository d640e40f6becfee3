package io.flexstream.policy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The per-request latency of the disk tier's small cache I/O in the FlexStream cost mode, and only there. */
class CostModelDiskRequestsTest {

    private static final Workload W = Workload.of(ModelShape.named("opt-125m"), 32, 16);
    private static final Policy CACHE_ON_DISK = Policy.of(16, 2, "100 0 0 0 100 0", false);
    private static final Policy CACHE_IN_MEMORY = Policy.of(16, 2, "100 0 100 0 100 0", false);

    /** The cpu-2core-estimate profile with the given request latencies (a batch's reads as fast as single ones). */
    static HardwareProfile withRequestSeconds(Path dir, double read, double write) throws Exception {
        return withRequestSeconds(dir, read, write, read);
    }

    /** The cpu-2core-estimate profile with the given request latencies. */
    static HardwareProfile withRequestSeconds(Path dir, double read, double write, double batchRead)
            throws Exception {
        ObjectMapper json = new ObjectMapper();
        ObjectNode tree = (ObjectNode) json.readTree(HardwareProfile.load("cpu-2core-estimate").toJson());
        tree.put("diskReadRequestSeconds", read);
        tree.put("diskWriteRequestSeconds", write);
        tree.put("diskBatchReadRequestSeconds", batchRead);
        Path file = dir.resolve("latency-" + read + "-" + write + "-" + batchRead + ".json");
        json.writeValue(file.toFile(), tree);
        return HardwareProfile.read(file);
    }

    private static Formulation formulate(HardwareProfile hw, CostModel.Mode mode) {
        return new CostModel(hw, mode, CostModel.DEFAULT_ALPHA, CostModel.Calibration.FP32).formulate(W, 16, 2);
    }

    @Test
    void onTheCpuBackendTheDiskCachesTrafficIsChargedToTheCompute(@TempDir Path dir) throws Exception {
        HardwareProfile hw = withRequestSeconds(dir, 40e-6, 40e-6);
        CostModel.Calibration gpu = new CostModel.Calibration(CostModel.Calibration.FP32.compressedBytesPerElement(),
                4, true, false);
        Formulation overlapped = new CostModel(hw, CostModel.Mode.FLEXSTREAM, CostModel.DEFAULT_ALPHA, gpu)
                .formulate(W, 16, 2);
        Formulation serial = formulate(hw, CostModel.Mode.FLEXSTREAM);
        double load = serial.decodeTerms().get("disk->host").coefficient(LpVariable.CN);
        double store = serial.decodeTerms().get("host->disk").coefficient(LpVariable.CN);
        assertTrue(load > 0 && store > 0);
        assertEquals(load + store, serial.decodeTerms().get("compute").coefficient(LpVariable.CN)
                - overlapped.decodeTerms().get("compute").coefficient(LpVariable.CN), 1e-12);
        // The links themselves are charged alike, and a cache in memory costs the same either way.
        assertEquals(overlapped.decodeTerms().get("disk->host").coefficient(LpVariable.CN), load, 0);
        assertEquals(overlapped.evaluate(CACHE_IN_MEMORY).throughput(), serial.evaluate(CACHE_IN_MEMORY).throughput(),
                1e-9);
        assertTrue(serial.evaluate(CACHE_ON_DISK).throughput() < overlapped.evaluate(CACHE_ON_DISK).throughput());
    }

    @Test
    void decodeChargesEachCacheRequestOnItsLink(@TempDir Path dir) throws Exception {
        // Large enough that the disk write side binds. Loads are charged at the batch time (the engine issues a GPU
        // batch's reads together); the stores' read-modify-write reads, one after another, at the single read time.
        double read = 0.7e-3, write = 1.3e-3, batchRead = 0.1e-3;
        Formulation none = formulate(withRequestSeconds(dir, 0, 0), CostModel.Mode.FLEXSTREAM);
        Formulation some = formulate(withRequestSeconds(dir, read, write, batchRead), CostModel.Mode.FLEXSTREAM);
        long row = 768 * 4;
        int sequences = 32;
        DiskCacheRequests.Counts load = DiskCacheRequests.decodeLoad(32, 16, row);
        DiskCacheRequests.Counts store = DiskCacheRequests.decodeStore(32, 16, row);
        assertEquals(sequences * load.reads() * batchRead,
                some.decodeTerms().get("disk->host").coefficient(LpVariable.CN)
                        - none.decodeTerms().get("disk->host").coefficient(LpVariable.CN), 1e-12);
        assertEquals(sequences * (store.reads() * read + store.writes() * write),
                some.decodeTerms().get("host->disk").coefficient(LpVariable.CN)
                        - none.decodeTerms().get("host->disk").coefficient(LpVariable.CN), 1e-12);
        DiskCacheRequests.Counts prefill = DiskCacheRequests.prefill(32, row);
        assertEquals(sequences * (prefill.reads() * read + prefill.writes() * write),
                some.prefillTerms().get("host->disk").coefficient(LpVariable.CN)
                        - none.prefillTerms().get("host->disk").coefficient(LpVariable.CN), 1e-12);
        // Only the disk share pays: weights on disk and cache in memory are unaffected.
        assertEquals(none.decodeTerms().get("disk->host").coefficient(LpVariable.WN),
                some.decodeTerms().get("disk->host").coefficient(LpVariable.WN), 0);
        assertEquals(none.evaluate(CACHE_IN_MEMORY).throughput(), some.evaluate(CACHE_IN_MEMORY).throughput(), 0);
        assertTrue(some.evaluate(CACHE_ON_DISK).throughput() < none.evaluate(CACHE_ON_DISK).throughput());
    }

    @Test
    void flexGenModeIgnoresRequestLatency(@TempDir Path dir) throws Exception {
        Formulation none = formulate(withRequestSeconds(dir, 0, 0), CostModel.Mode.FLEXGEN);
        Formulation huge = formulate(withRequestSeconds(dir, 1, 1), CostModel.Mode.FLEXGEN);
        assertEquals(none.evaluate(CACHE_ON_DISK), huge.evaluate(CACHE_ON_DISK));
    }
}
