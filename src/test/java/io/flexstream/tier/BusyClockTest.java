package io.flexstream.tier;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Busy time is the union of the operations' intervals: overlaps count once, gaps not at all. */
class BusyClockTest {

    @Test
    void overlappingOperationsCountOnceAndGapsNotAtAll() {
        BusyClock clock = new BusyClock();
        clock.begin(100);
        clock.begin(150);          // overlaps the first
        clock.end(200, 10);
        clock.end(300, 20);        // busy 100..300
        clock.begin(1_000);        // idle 300..1000 is not counted
        clock.end(1_050, 5);
        assertEquals(250, clock.busyNanos(5_000));
        assertEquals(35, clock.bytes());
    }

    @Test
    void anOpenIntervalCountsUpToNow() {
        BusyClock clock = new BusyClock();
        clock.begin(10);
        assertEquals(90, clock.busyNanos(100));
        clock.end(120, 1);
        assertEquals(110, clock.busyNanos(500));
    }

    @Test
    void anEndWithoutABeginIsABug() {
        assertThrows(IllegalStateException.class, () -> new BusyClock().end(1, 1));
    }
}
