package io.flexstream.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The kernels' fatbin, checked without a GPU: the jar's copy holds SASS for sm_80 and sm_90 and PTX for compute_90
 * and defines every kernel the backend launches; the .cu compiles with nvcc and the checked-in fatbin is what it
 * compiles to (so the copy used on machines without nvcc is not stale); cuobjdump agrees where it is installed.
 */
class FatbinImageTest {

    private static final Path NVCC = Path.of("/usr/local/cuda/bin/nvcc");
    private static final Path CHECKED_IN = Path.of("native/flexstream_kernels.fatbin");

    @Test
    void theClasspathFatbinHoldsSm80AndSm90SassAndCompute90Ptx() {
        FatbinImage image = FatbinImage.fromClasspath();
        assertTrue(image.hasSass(80), image.describe());
        assertTrue(image.hasSass(90), image.describe());
        assertTrue(image.hasPtx(90), image.describe());
        assertFalse(image.hasSass(70), image.describe());
        assertEquals(3, image.entries().size(), image.describe());
    }

    @Test
    void everyLaunchedKernelIsDefinedForBothArchitectures() {
        FatbinImage image = FatbinImage.fromClasspath();
        for (int arch : new int[] {80, 90}) {
            for (String name : KernelModule.NAMES) {
                assertTrue(image.sassDefines(arch, name), name + " missing from sm_" + arch);
            }
            // The search matches whole names only: a prefix of a real kernel is not a kernel.
            assertFalse(image.sassDefines(arch, "fs_linear"));
            assertFalse(image.sassDefines(arch, "fs_softmax"));
        }
    }

    @Test
    void theClasspathCopyIsTheCheckedInOne() throws IOException {
        assertArrayEquals(Files.readAllBytes(CHECKED_IN), FatbinImage.fromClasspath().bytes(),
                "the jar's fatbin differs from native/flexstream_kernels.fatbin");
    }

    @Test
    void garbageIsRejectedWithTheReason() {
        var e = assertThrows(IllegalArgumentException.class, () -> FatbinImage.parse(new byte[64]));
        assertTrue(e.getMessage().contains("magic"), e.getMessage());
        byte[] truncated = java.util.Arrays.copyOf(FatbinImage.fromClasspath().bytes(), 200);
        e = assertThrows(IllegalArgumentException.class, () -> FatbinImage.parse(truncated));
        assertTrue(e.getMessage().contains("bytes but the file has 200"), e.getMessage());
    }

    @Test
    void theKernelsCompileWithNvccToTheCheckedInFatbin(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isExecutable(NVCC), "skipped: no nvcc at " + NVCC + " (the checked-in fatbin is used)");
        Path out = dir.resolve("fresh.fatbin");
        Process p = new ProcessBuilder("bash", "native/build-fatbin.sh", out.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "nvcc took over 2 minutes");
        assertEquals(0, p.exitValue(), log);
        FatbinImage fresh = FatbinImage.parse(Files.readAllBytes(out));
        assertTrue(fresh.hasSass(80) && fresh.hasSass(90) && fresh.hasPtx(90), fresh.describe());
        assertArrayEquals(Files.readAllBytes(CHECKED_IN), fresh.bytes(),
                "native/flexstream_kernels.fatbin is stale: run native/build-fatbin.sh and commit the result");
    }

    @Test
    void cuobjdumpListsTheSameArchitectures() throws Exception {
        Path cuobjdump = Path.of("/usr/local/cuda/bin/cuobjdump");
        assumeTrue(Files.isExecutable(cuobjdump), "skipped: no cuobjdump at " + cuobjdump
                + " (the CUDA toolkit here ships nvcc without it); the parser above checks the same facts");
        Process p = new ProcessBuilder(cuobjdump.toString(), "--list-elf", "--list-ptx", CHECKED_IN.toString())
                .redirectErrorStream(true).start();
        String listing = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        for (String expected : List.of("sm_80", "sm_90", ".ptx")) {
            assertTrue(listing.contains(expected), expected + " not in:\n" + listing);
        }
    }
}
