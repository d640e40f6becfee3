package io.flexstream.metrics;

import io.flexstream.tier.TierKind;
import io.flexstream.tier.Tiers;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;

import java.util.Locale;

/**
 * The offloading engine's tier accounting as gauges, one series per tier ({@code tier}: device, host, disk):
 * {@code flexstream_tier_bytes_in_use}, {@code flexstream_tier_peak_bytes} and {@code flexstream_tier_budget_bytes}.
 * They read the allocators' counters on scrape (a short lock each), so no engine thread waits on a scrape. An operator
 * watches in-use against budget: a block that needs more than a budget fails with a named error rather than
 * spilling, so a tier running close to its budget is the early warning.
 */
public final class TierGauges {

    private TierGauges() {
    }

    public static void bind(MeterRegistry registry, Tiers tiers) {
        for (TierKind kind : TierKind.values()) {
            String tier = kind.name().toLowerCase(Locale.ROOT);
            Gauge.builder("flexstream.tier.bytes.in.use", tiers, t -> t.used(kind)).tags("tier", tier)
                    .baseUnit("bytes").description("bytes allocated on the tier now").register(registry);
            Gauge.builder("flexstream.tier.peak", tiers, t -> t.peak(kind)).tags("tier", tier)
                    .baseUnit("bytes").description("most bytes allocated on the tier at once").register(registry);
            Gauge.builder("flexstream.tier.budget", tiers, t -> t.budget(kind)).tags("tier", tier)
                    .baseUnit("bytes").description("the tier's hard limit").register(registry);
        }
    }
}
