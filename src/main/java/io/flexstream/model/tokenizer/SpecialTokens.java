package io.flexstream.model.tokenizer;

import java.util.Map;
import java.util.Set;

/**
 * The tokens that are not plain BPE output. Ids are -1 where the checkpoint defines no such token.
 *
 * @param bos     prepended by {@link Gpt2Tokenizer#encodePrompt} (OPT: {@code </s>} = 2)
 * @param eos     generation stops here (OPT: {@code </s>} = 2)
 * @param pad     left padding in batches (OPT: {@code <pad>} = 1)
 * @param unk     stands for a byte with no token (OPT: {@code <unk>} = 3; never produced by the full GPT-2 alphabet)
 * @param literal every added token, special or not, by its text: such text in the input becomes that one id rather
 *                than being split by BPE, as Hugging Face does for added tokens
 * @param special the ids {@link Gpt2Tokenizer#decode} skips: bos, eos, pad, unk, additional special tokens and
 *                added tokens flagged special
 */
record SpecialTokens(int bos, int eos, int pad, int unk, Map<String, Integer> literal, Set<Integer> special) {

    SpecialTokens {
        literal = Map.copyOf(literal);
        special = Set.copyOf(special);
    }
}
