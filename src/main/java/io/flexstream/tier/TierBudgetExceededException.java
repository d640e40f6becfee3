package io.flexstream.tier;

/** An allocation would take a tier past its byte budget. Never handled by spilling elsewhere: the policy is wrong. */
public final class TierBudgetExceededException extends RuntimeException {

    public TierBudgetExceededException(TierKind tier, String what, long requested, long used, long budget) {
        super(String.format("%s tier budget exceeded allocating %s: %,d bytes requested, %,d of %,d in use. "
                        + "Give the tier more memory (--%s) or move more of this tensor class to a slower tier "
                        + "(--percent).", tier, what, requested, used, budget,
                tier == TierKind.DEVICE ? "device-mem" : tier == TierKind.HOST ? "host-mem" : "disk-mem"));
    }
}
