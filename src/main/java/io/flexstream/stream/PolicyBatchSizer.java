package io.flexstream.stream;

import io.flexstream.policy.InfeasiblePolicyException;
import io.flexstream.policy.Policy;
import io.flexstream.policy.PolicyCache;
import io.flexstream.policy.Solution;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Locale;

/**
 * Sizes micro-batches by the policy search: per padded prompt-length bucket (and the node's generation length) the
 * LP optimum's block, gbs x nb, is the target; a block sent early by the linger time is re-solved for its smaller
 * size. Policies are computed once per bucket ({@link PolicyCache}). A bucket no policy fits (the prompt is too long
 * for the memory) falls back to batches of one and says so once.
 */
public final class PolicyBatchSizer implements BatchSizer {

    private static final Logger LOG = LoggerFactory.getLogger(PolicyBatchSizer.class);

    private final PolicyCache cache;
    private final int genLen;
    private final int maxBlock;

    /**
     * @param genLen   generation length the policies are searched for (the node's max.new.tokens)
     * @param maxBlock cap on the target, e.g. what the node may buffer
     */
    public PolicyBatchSizer(PolicyCache cache, int genLen, int maxBlock) {
        if (genLen < 1 || maxBlock < 1) {
            throw new IllegalArgumentException("generation length and block cap must be positive");
        }
        this.cache = cache;
        this.genLen = genLen;
        this.maxBlock = maxBlock;
    }

    @Override
    public int targetSize(int paddedPromptTokens) {
        try {
            return Math.min(maxBlock, cache.policyFor(paddedPromptTokens, genLen).policy().blockSize());
        } catch (InfeasiblePolicyException e) {
            LOG.warn("no policy fits prompts of {} tokens: {}; batching them one at a time", paddedPromptTokens,
                    e.getMessage());
            return 1;
        }
    }

    @Override
    public String describe() {
        return "lp(gen=" + genLen + ")";
    }

    @Override
    public String describe(int paddedPromptTokens, int batchSize) {
        try {
            Solution full = cache.policyFor(paddedPromptTokens, genLen);
            Solution used = batchSize < full.policy().blockSize()
                    ? cache.policyForPartialBlock(paddedPromptTokens, genLen, batchSize) : full;
            Policy p = used.policy();
            return String.format(Locale.ROOT, "lp gbs=%d nb=%d percent=%s predicted=%.1f tokens/s%s",
                    p.gpuBatchSize(), p.numGpuBatches(), p.formatPercent(),
                    used.prediction().throughput(), used == full ? "" : " (partial block)");
        } catch (InfeasiblePolicyException e) {
            return "lp infeasible: " + e.getMessage();
        }
    }
}
