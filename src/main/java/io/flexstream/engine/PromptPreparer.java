package io.flexstream.engine;

import io.flexstream.model.OptConfig;
import io.flexstream.model.tokenizer.Gpt2Tokenizer;

/** Tokenizes and validates requests the same way for every engine, before they join a batch. */
final class PromptPreparer {

    private PromptPreparer() {
    }

    static PreparedPrompt prepare(GenerationRequest request, Gpt2Tokenizer tokenizer, OptConfig config)
            throws InvalidRequestException {
        request.sampling().validate();
        int[] ids;
        if (request.prompt() != null && request.promptTokenIds() != null) {
            throw new InvalidRequestException(InvalidRequestException.Reason.BAD_PARAMETER,
                    "give either prompt or prompt_token_ids, not both");
        }
        if (request.prompt() != null) {
            if (request.prompt().isEmpty()) {
                throw new InvalidRequestException(InvalidRequestException.Reason.EMPTY_PROMPT, "the prompt is empty");
            }
            if (tokenizer == null) {
                throw new InvalidRequestException(InvalidRequestException.Reason.BAD_PARAMETER,
                        "this engine has no tokenizer: send prompt_token_ids");
            }
            ids = tokenizer.encodePrompt(request.prompt());
        } else if (request.promptTokenIds() != null) {
            ids = request.promptTokenIds().clone();
            if (ids.length == 0) {
                throw new InvalidRequestException(InvalidRequestException.Reason.EMPTY_PROMPT,
                        "prompt_token_ids is empty");
            }
            for (int id : ids) {
                if (id < 0 || id >= config.vocabSize()) {
                    throw new InvalidRequestException(InvalidRequestException.Reason.BAD_TOKEN_ID,
                            "token id " + id + " is outside the vocabulary [0, " + config.vocabSize() + ")");
                }
            }
        } else {
            throw new InvalidRequestException(InvalidRequestException.Reason.EMPTY_PROMPT,
                    "the request has neither prompt nor prompt_token_ids");
        }
        if (ids.length >= config.maxPositionEmbeddings()) {
            throw new InvalidRequestException(InvalidRequestException.Reason.PROMPT_TOO_LONG,
                    "the prompt has " + ids.length + " tokens; the model's context holds " + config.maxPositionEmbeddings()
                            + " tokens, which leaves no room to generate");
        }
        return new PreparedPrompt(request, ids);
    }
}
