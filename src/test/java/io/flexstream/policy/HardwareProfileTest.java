package io.flexstream.policy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HardwareProfileTest {

    @Test
    void t4FlexGenHoldsFlexGensConstants() {
        HardwareProfile t4 = HardwareProfile.load("t4-flexgen");
        double gb = HardwareProfile.GIB, t = HardwareProfile.TERA;
        assertEquals(15 * (long) gb, t4.deviceMemoryBytes());
        assertEquals(200 * (long) gb, t4.hostMemoryBytes());
        assertEquals(1500 * (long) gb, t4.diskBytes());
        assertEquals(12.89, t4.hostToDevice() / gb, 1e-12);
        assertEquals(0.97, t4.deviceToHostCache() / gb, 1e-12);
        assertEquals(4.82, t4.deviceToHostHidden() / gb, 1e-12);
        assertEquals(0.473, t4.diskToHost() / gb, 1e-12);
        assertEquals(0.746, t4.hostToDiskCachePrefill() / gb, 1e-12);
        assertEquals(2.015, t4.hostToDiskHiddenPrefill() / gb, 1e-12);
        assertEquals(2.015, t4.hostToDiskDecode() / gb, 1e-12);
        assertEquals(21.24, t4.matmulFlopsPrefill() / t, 1e-12);
        assertEquals(4.3, t4.matmulFlopsDecode() / t, 1e-12);
        assertEquals(9.97, t4.attentionFlopsPrefill() / t, 1e-12);
        assertEquals(0.079, t4.attentionFlopsDecode() / t, 1e-12);
        assertEquals(0.0123, t4.hostAttentionFlops() / t, 1e-12);
        assertEquals(0.0168, t4.cpuCorrectionC1());
        assertEquals(0.0328, t4.cpuCorrectionC2());
        assertEquals(0.0621, t4.cpuCorrectionC3());
    }

    @Test
    void theMedianOfProfilesTakesEveryNumbersMedian() {
        HardwareProfile t4 = HardwareProfile.load("t4-flexgen");
        HardwareProfile cpu = HardwareProfile.load("cpu-2core-estimate");
        HardwareProfile both = t4.withCapacities(cpu.deviceMemoryBytes(), cpu.hostMemoryBytes(), cpu.diskBytes());
        assertEquals(t4, HardwareProfile.median(t4.name(), t4.description(), List.of(t4)));
        HardwareProfile three = HardwareProfile.median("m", "d", List.of(t4, cpu, both));
        assertEquals("m", three.name());
        assertEquals("d", three.description());
        // t4 and both share every rate, so the median of three is theirs; capacities: two of cpu's, one of t4's.
        assertEquals(t4.diskToHost(), three.diskToHost());
        assertEquals(t4.matmulFlopsDecode(), three.matmulFlopsDecode());
        assertEquals(cpu.deviceMemoryBytes(), three.deviceMemoryBytes());
        HardwareProfile two = HardwareProfile.median("m", "d", List.of(t4, cpu));
        assertEquals((t4.diskToHost() + cpu.diskToHost()) / 2, two.diskToHost(), 1e-3);
        assertEquals((t4.deviceMemoryBytes() + cpu.deviceMemoryBytes()) / 2, two.deviceMemoryBytes());
        assertThrows(IllegalArgumentException.class, () -> HardwareProfile.median("m", "d", List.of()));
    }

    @Test
    void anotherDiskRateChangesOnlyTheDiskRate() {
        HardwareProfile t4 = HardwareProfile.load("t4-flexgen");
        HardwareProfile faster = t4.withDiskToHost(3e9);
        assertEquals(3e9, faster.diskToHost());
        assertEquals(t4.toJson(), faster.withDiskToHost(t4.diskToHost()).toJson());
        assertThrows(IllegalArgumentException.class, () -> t4.withDiskToHost(0));
    }

    @Test
    void hostAttentionEfficiencyHasFlexGensFloor() {
        HardwareProfile t4 = HardwareProfile.load("t4-flexgen");
        assertEquals(1.0, t4.hostAttentionEfficiency(64, 4096), 1e-12);
        assertEquals(1 - 0.0328 * Math.log(64.0 / 48) / Math.log(2), t4.hostAttentionEfficiency(48, 7168), 1e-12);
        HardwareProfile harsh = new HardwareProfile("x", "", 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0);
        assertEquals(0.1, harsh.hostAttentionEfficiency(1, 64), 1e-12);
    }

    @Test
    void jsonRoundTripAndLoadByFile(@TempDir Path dir) throws Exception {
        HardwareProfile t4 = HardwareProfile.load("t4-flexgen");
        Path file = dir.resolve("mine.json");
        t4.write(file);
        assertEquals(t4, HardwareProfile.load(file.toString()));
        assertEquals(t4, HardwareProfile.read(file));
        Files.writeString(file, t4.toJson().replace("\"diskToHost\"", "\"diskToHostTypo\""));
        assertThrows(RuntimeException.class, () -> HardwareProfile.read(file));
    }

    @Test
    void filesWithoutTheDiskRequestTimesGetTheDefaults(@TempDir Path dir) throws Exception {
        HardwareProfile cpu = HardwareProfile.load("cpu-2core-estimate");
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        com.fasterxml.jackson.databind.node.ObjectNode tree =
                (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(cpu.toJson());
        tree.remove(HardwareProfile.DEFAULTS_FOR_OLDER_FILES.keySet());
        tree.remove("diskBatchReadRequestSeconds");
        Path older = dir.resolve("older.json");
        json.writeValue(older.toFile(), tree);
        assertTrue(!Files.readString(older).contains("RequestSeconds"));
        HardwareProfile read = HardwareProfile.read(older);
        assertEquals(HardwareProfile.DEFAULTS_FOR_OLDER_FILES.get("diskReadRequestSeconds"),
                read.diskReadRequestSeconds());
        assertEquals(HardwareProfile.DEFAULTS_FOR_OLDER_FILES.get("diskWriteRequestSeconds"),
                read.diskWriteRequestSeconds());
        // Without a measured batch time, a batch's reads cost what single reads do.
        assertEquals(read.diskReadRequestSeconds(), read.diskBatchReadRequestSeconds());
        assertEquals(cpu.diskToHost(), read.diskToHost());
        // A present value is kept, not replaced by the default, and a batch time follows the file's single one.
        Path newer = dir.resolve("newer.json");
        tree.put("diskReadRequestSeconds", 0.25);
        json.writeValue(newer.toFile(), tree);
        assertEquals(0.25, HardwareProfile.read(newer).diskReadRequestSeconds());
        assertEquals(0.25, HardwareProfile.read(newer).diskBatchReadRequestSeconds());
        tree.put("diskBatchReadRequestSeconds", 0.125);
        json.writeValue(newer.toFile(), tree);
        assertEquals(0.125, HardwareProfile.read(newer).diskBatchReadRequestSeconds());
    }

    @Test
    void negativeRequestTimesAreRejectedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new HardwareProfile("x", "", 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, -1e-6, 0));
        assertTrue(e.getMessage().contains("diskWriteRequestSeconds"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new HardwareProfile("x", "", 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, -1));
        assertTrue(e.getMessage().contains("diskBatchReadRequestSeconds"), e.getMessage());
    }

    @Test
    void unknownNameSaysWhatExists() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HardwareProfile.load("a100-nope"));
        assertTrue(e.getMessage().contains("t4-flexgen"), e.getMessage());
    }

    @Test
    void nonPositiveRatesAreRejectedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new HardwareProfile("x", "", 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0));
        assertTrue(e.getMessage().contains("diskToHost"), e.getMessage());
    }

    @Test
    void cpuEstimateLoadsAndSizesASmallModel() {
        HardwareProfile cpu = HardwareProfile.load("cpu-2core-estimate");
        assertEquals(4L << 30, cpu.deviceMemoryBytes());
        assertEquals(1.0, cpu.hostAttentionEfficiency(1, 768), 1e-12);   // no correction fitted
        Solution s = new PolicySearch(new CostModel(cpu, CostModel.Mode.FLEXSTREAM))
                .search(Workload.of(ModelShape.named("opt-1.3b"), 128, 32), Pins.NONE).best();
        assertTrue(s.throughput() > 0 && s.policy().blockSize() >= 1);
    }
}
