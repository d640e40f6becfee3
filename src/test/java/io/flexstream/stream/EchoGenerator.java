package io.flexstream.stream;

import io.flexstream.engine.FinishReason;
import io.flexstream.engine.GenerationListener;
import io.flexstream.engine.GenerationRequest;
import io.flexstream.engine.GenerationResult;
import io.flexstream.engine.Generator;
import io.flexstream.engine.InvalidRequestException;
import io.flexstream.engine.PreparedPrompt;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A deterministic stand-in for the engine: a text prompt tokenizes to BOS (id 1) plus one id per character, and the
 * "completion" echoes the prompt's ids and text. It can be told to throw whenever a batch contains a prompt with a
 * marker, and to sleep per block, which is how the tests simulate poison prompts and long blocks.
 */
final class EchoGenerator implements Generator {

    static final int VOCAB = 50_000;

    private final int contextLength;
    private final long blockSleepMs;
    private final String failMarker;
    final AtomicInteger generateCalls = new AtomicInteger();
    final AtomicInteger promptsGenerated = new AtomicInteger();

    EchoGenerator(int contextLength, long blockSleepMs, String failMarker) {
        this.contextLength = contextLength;
        this.blockSleepMs = blockSleepMs;
        this.failMarker = failMarker;
    }

    static EchoGenerator fast() {
        return new EchoGenerator(256, 0, null);
    }

    @Override
    public PreparedPrompt prepare(GenerationRequest request) throws InvalidRequestException {
        request.sampling().validate();
        int[] ids;
        if (request.promptTokenIds() != null) {
            ids = request.promptTokenIds();
            for (int id : ids) {
                if (id < 0 || id >= VOCAB) {
                    throw new InvalidRequestException(InvalidRequestException.Reason.BAD_TOKEN_ID,
                            "token id " + id + " outside [0, " + VOCAB + ")");
                }
            }
        } else {
            String text = request.prompt();
            if (text == null || text.isEmpty()) {
                throw new InvalidRequestException(InvalidRequestException.Reason.EMPTY_PROMPT, "empty prompt");
            }
            ids = new int[text.length() + 1];
            ids[0] = 1;
            for (int i = 0; i < text.length(); i++) {
                ids[i + 1] = 2 + text.charAt(i) % (VOCAB - 2);
            }
        }
        if (ids.length == 0) {
            throw new InvalidRequestException(InvalidRequestException.Reason.EMPTY_PROMPT, "empty prompt");
        }
        if (ids.length + 1 > contextLength) {
            throw new InvalidRequestException(InvalidRequestException.Reason.PROMPT_TOO_LONG,
                    "prompt of " + ids.length + " tokens leaves no room in a context of " + contextLength);
        }
        return new PreparedPrompt(request, ids);
    }

    @Override
    public List<GenerationResult> generate(List<PreparedPrompt> prompts, GenerationListener listener) {
        generateCalls.incrementAndGet();
        for (PreparedPrompt p : prompts) {
            if (failMarker != null && p.request().prompt() != null && p.request().prompt().contains(failMarker)) {
                throw new IllegalStateException("engine failure on a prompt containing " + failMarker);
            }
        }
        if (blockSleepMs > 0) {
            try {
                Thread.sleep(blockSleepMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        List<GenerationResult> out = new ArrayList<>();
        for (PreparedPrompt p : prompts) {
            int n = Math.min(p.request().sampling().maxNewTokens(), Math.max(1, contextLength - p.tokenIds().length));
            int[] tokens = new int[n];
            for (int i = 0; i < n; i++) {
                tokens[i] = p.tokenIds()[i % p.tokenIds().length];
            }
            String text = "echo:" + (p.request().prompt() != null ? p.request().prompt()
                    : Arrays.toString(p.request().promptTokenIds()));
            out.add(new GenerationResult(p.id(), text, tokens, p.tokenIds().length, FinishReason.LENGTH));
        }
        promptsGenerated.addAndGet(prompts.size());
        return out;
    }

    @Override
    public String modelName() {
        return "echo";
    }

    @Override
    public int contextLength() {
        return contextLength;
    }

    @Override
    public void close() {
    }
}
