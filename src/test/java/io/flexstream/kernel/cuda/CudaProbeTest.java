package io.flexstream.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The probe answers on any machine without throwing, and answers the same every time: on a machine without a driver
 * the first JCuda call throws UnsatisfiedLinkError and later ones NoClassDefFoundError, so a second real probe
 * would give another (wrong) reason or throw.
 */
class CudaProbeTest {

    @Test
    void probesOnceAndNeverThrows() {
        CudaProbe.Result first = CudaProbe.probe();
        CudaProbe.Result second = CudaProbe.probe();
        assertSame(first, second);
        switch (first) {
            case CudaProbe.Unavailable(String reason) -> {
                assertFalse(reason.isBlank());
                System.out.println("CudaProbeTest: no GPU here: " + reason);
            }
            case CudaProbe.Available(DeviceInfo device) -> {
                assertFalse(device.name().isBlank());
                assertTrue(device.major() >= CudaProbe.MIN_MAJOR, device.describe());
                assertTrue(device.totalBytes() > 0, device.describe());
                System.out.println("CudaProbeTest: GPU " + device.describe());
            }
        }
    }

    @Test
    void withoutAnNvidiaDriverTheReasonNamesIt() {
        // Only meaningful where the driver library is absent; on a GPU machine the other branch of the test above runs.
        boolean driverPresent = java.nio.file.Files.exists(
                java.nio.file.Path.of("/usr/lib/x86_64-linux-gnu/libcuda.so.1"));
        org.junit.jupiter.api.Assumptions.assumeFalse(driverPresent, "skipped: libcuda.so.1 is installed here");
        var result = assertInstanceOf(CudaProbe.Unavailable.class, CudaProbe.probe());
        assertTrue(result.reason().contains("libcuda.so.1"), result.reason());
    }

    @Test
    void theDisableSwitchAnswersUnavailableWithoutTouchingTheDriver() {
        System.setProperty("flexstream.cuda.disable", "true");
        try {
            var result = assertInstanceOf(CudaProbe.Unavailable.class, CudaProbe.probe());
            assertTrue(result.reason().contains("flexstream.cuda.disable"), result.reason());
        } finally {
            System.clearProperty("flexstream.cuda.disable");
        }
    }
}
