package io.flexstream.stream;

import org.junit.jupiter.api.Test;

import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OffsetTrackerTest {

    @Test
    void emptyTrackerHasNothingToCommit() {
        OffsetTracker t = new OffsetTracker();
        assertEquals(OptionalLong.empty(), t.committable());
        assertEquals(OptionalLong.empty(), t.uncommitted());
    }

    @Test
    void committableIsTheLowestUnfinishedOffset() {
        OffsetTracker t = new OffsetTracker();
        for (long o = 10; o < 15; o++) {
            t.track(o);
        }
        assertEquals(OptionalLong.of(10), t.committable());
        t.finish(12);
        t.finish(13);
        assertEquals(OptionalLong.of(10), t.committable(), "out-of-order finishes do not move the position");
        t.finish(10);
        assertEquals(OptionalLong.of(11), t.committable());
        t.finish(11);
        assertEquals(OptionalLong.of(14), t.committable(), "jumps over the already finished 12 and 13");
        t.finish(14);
        assertEquals(OptionalLong.of(15), t.committable(), "all done: one past the highest tracked");
        assertEquals(0, t.pendingCount());
    }

    @Test
    void gapsInOffsetsAreSkipped() {
        OffsetTracker t = new OffsetTracker();
        t.track(3);
        t.track(7);     // 4..6 compacted away or transaction markers
        t.finish(3);
        assertEquals(OptionalLong.of(7), t.committable());
        t.finish(7);
        assertEquals(OptionalLong.of(8), t.committable());
    }

    @Test
    void reReadOffsetsAndUnknownFinishesAreIgnored() {
        OffsetTracker t = new OffsetTracker();
        assertTrue(t.track(5));
        assertFalse(t.track(5));
        assertFalse(t.track(4));
        assertFalse(t.finish(9));
        assertEquals(1, t.pendingCount());
    }

    @Test
    void uncommittedOffersAPositionOnceUntilItMovesOrTheCommitFails() {
        OffsetTracker t = new OffsetTracker();
        t.track(0);
        t.track(1);
        assertEquals(OptionalLong.empty(), t.uncommitted(), "the start position needs no commit");
        t.finish(0);
        assertEquals(OptionalLong.of(1), t.uncommitted());
        t.commitSent(1);
        assertEquals(OptionalLong.empty(), t.uncommitted());
        t.commitFailed(1);
        assertEquals(OptionalLong.of(1), t.uncommitted(), "a failed commit is offered again");
        t.commitSent(1);
        t.commitConfirmed(1);
        t.finish(1);
        assertEquals(OptionalLong.of(2), t.uncommitted());
        t.commitSent(2);
        t.commitFailed(1);      // a stale failure of an older commit changes nothing
        assertEquals(OptionalLong.empty(), t.uncommitted());
        assertEquals(1, t.confirmed());
    }
}
