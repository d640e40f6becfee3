package io.flexstream.engine;

import java.util.List;

/**
 * Per-request decoding settings with Hugging Face semantics: logits are divided by {@code temperature}, cut to the
 * {@code topK} most likely tokens, then to the smallest set whose mass reaches {@code topP}, then sampled with a
 * generator seeded by {@code seed}. Temperature 0 means greedy (argmax), which ignores the other three.
 *
 * @param maxNewTokens tokens to generate at most (at least 1)
 * @param temperature  0 for greedy, else in (0, 100]
 * @param topP         in (0, 1]; 1 disables the cut
 * @param topK         0 disables the cut, else at least 1
 * @param seed         same seed, same prompt, same output
 * @param stop         strings that end generation when the decoded text contains one; the text is cut before it
 */
public record SamplingParams(int maxNewTokens, float temperature, float topP, int topK, long seed, List<String> stop) {

    public static final int DEFAULT_MAX_NEW_TOKENS = 32;

    public SamplingParams {
        stop = stop == null ? List.of() : List.copyOf(stop);
    }

    /** Greedy decoding of {@code maxNewTokens} tokens, no stop strings. */
    public static SamplingParams greedy(int maxNewTokens) {
        return new SamplingParams(maxNewTokens, 0f, 1f, 0, 0L, List.of());
    }

    public boolean isGreedy() {
        return temperature == 0f;
    }

    /**
     * Checks every field against its allowed range.
     *
     * @throws InvalidRequestException naming the field, the value and the allowed range
     */
    public void validate() throws InvalidRequestException {
        if (maxNewTokens < 1) {
            throw new InvalidRequestException(InvalidRequestException.Reason.BAD_PARAMETER,
                    "max_new_tokens must be at least 1, got " + maxNewTokens);
        }
        if (!(temperature >= 0f && temperature <= 100f)) {
            throw new InvalidRequestException(InvalidRequestException.Reason.BAD_PARAMETER,
                    "temperature must be in [0, 100] (0 = greedy), got " + temperature);
        }
        if (!(topP > 0f && topP <= 1f)) {
            throw new InvalidRequestException(InvalidRequestException.Reason.BAD_PARAMETER,
                    "top_p must be in (0, 1], got " + topP);
        }
        if (topK < 0) {
            throw new InvalidRequestException(InvalidRequestException.Reason.BAD_PARAMETER,
                    "top_k must be 0 (disabled) or positive, got " + topK);
        }
        for (String s : stop) {
            if (s == null || s.isEmpty()) {
                throw new InvalidRequestException(InvalidRequestException.Reason.BAD_PARAMETER,
                        "stop strings must be non-empty");
            }
        }
    }
}
