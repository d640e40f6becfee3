package io.flexstream.engine;

import io.flexstream.model.tokenizer.Gpt2Tokenizer;

import java.util.Arrays;

/**
 * Bookkeeping of one sequence during generation: its prompt, the tokens generated so far, and the stop rules
 * (EOS, stop strings, its token budget) that end it.
 */
final class SequenceState {

    final PreparedPrompt prompt;
    final Sampler sampler;
    /** Tokens this sequence may still generate at most: max_new_tokens, cut to what the context leaves. */
    final int budget;
    private int[] generated = new int[8];
    private int count;
    private FinishReason finish;
    private String stoppedText;

    SequenceState(PreparedPrompt prompt, int contextLength) {
        this.prompt = prompt;
        this.sampler = new Sampler(prompt.request().sampling());
        this.budget = Math.min(prompt.request().sampling().maxNewTokens(), contextLength - prompt.tokenIds().length);
    }

    int promptLength() {
        return prompt.tokenIds().length;
    }

    boolean finished() {
        return finish != null;
    }

    int lastToken() {
        return generated[count - 1];
    }

    /** Number of real tokens (prompt and generated) so far: the OPT position of the next token to be fed. */
    int realTokens() {
        return promptLength() + count;
    }

    /** Records a sampled token and decides whether the sequence is done. */
    void accept(int token, int eosId, Gpt2Tokenizer tokenizer) {
        if (token == eosId) {
            finish = FinishReason.EOS;
            return;
        }
        if (count == generated.length) {
            generated = Arrays.copyOf(generated, count * 2);
        }
        generated[count++] = token;
        var stops = prompt.request().sampling().stop();
        if (!stops.isEmpty() && tokenizer != null) {
            String text = tokenizer.decode(generated, 0, count);
            int cut = -1;
            for (String stop : stops) {
                int at = text.indexOf(stop);
                if (at >= 0 && (cut < 0 || at < cut)) {
                    cut = at;
                }
            }
            if (cut >= 0) {
                finish = FinishReason.STOP;
                stoppedText = text.substring(0, cut);
                return;
            }
        }
        if (count >= budget) {
            finish = FinishReason.LENGTH;
        }
    }

    GenerationResult result(Gpt2Tokenizer tokenizer) {
        int[] ids = Arrays.copyOf(generated, count);
        String text = stoppedText != null ? stoppedText : tokenizer == null ? "" : tokenizer.decode(ids);
        return new GenerationResult(prompt.id(), text, ids, promptLength(), finish);
    }
}
