package io.flexstream.cli;

import io.flexstream.policy.HardwareProfile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code flexstream profile} end to end on a small hidden size (about half a minute: the disk part is the same as for
 * a real run): it writes a loadable profile whose disk values were measured, and leaves no files in the offload
 * directory.
 */
class ProfileCommandTest {

    @Test
    void writesAMeasuredProfileIncludingDiskRequestTimes(@TempDir Path dir) throws Exception {
        Path spill = dir.resolve("spill");
        Path out = dir.resolve("profile.json");
        int exit = new CommandLine(new ProfileCommand()).execute("--output", out.toString(), "--offload-dir",
                spill.toString(), "--hidden", "256", "--name", "test-machine");
        assertEquals(0, exit);
        HardwareProfile p = HardwareProfile.read(out);
        assertEquals("test-machine", p.name());
        // A 4 KiB O_DIRECT request takes microseconds to milliseconds on any disk; 0 would mean "not measured".
        assertTrue(p.diskReadRequestSeconds() > 1e-7 && p.diskReadRequestSeconds() < 0.1, p.toJson());
        assertTrue(p.diskWriteRequestSeconds() > 1e-7 && p.diskWriteRequestSeconds() < 0.1, p.toJson());
        assertTrue(p.diskBatchReadRequestSeconds() > 1e-8 && p.diskBatchReadRequestSeconds() < 0.1, p.toJson());
        assertTrue(p.diskToHost() > 1e6, p.toJson());
        assertTrue(p.description().contains("small O_DIRECT request"), p.description());
        try (Stream<Path> left = Files.list(spill)) {
            assertEquals(0, left.count(), "the profile's disk files are removed");
        }
    }
}
