package io.flexstream.view;

import io.flexstream.stream.avro.Completion;
import io.flexstream.stream.avro.DeadLetter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.Map;

/** Completions and dead letters as a FlexStream node would publish them. */
final class ViewFixtures {

    private ViewFixtures() {
    }

    static Completion completion(String id, String text, int tokens, int batchSize, long queuedMs, long generationMs) {
        return Completion.newBuilder().setId(id).setText(text)
                .setTokenIds(java.util.stream.IntStream.range(0, tokens).boxed().toList())
                .setPromptTokens(4).setFinishReason("length").setModel("echo").setSourceTopic("prompts")
                .setSourcePartition(0).setSourceOffset(0).setQueuedMs(queuedMs).setBatchMs(1)
                .setGenerationMs(generationMs).setBatchId(1).setBatchSize(batchSize).setPolicy("fixed(batch=4)")
                .setMetadata(Map.of()).build();
    }

    static byte[] avro(Completion c) {
        try {
            return bytes(Completion.getEncoder().encode(c));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] deadLetter(String reason) {
        DeadLetter d = DeadLetter.newBuilder().setReason(reason).setErrorClass("x.Y").setErrorMessage("bad")
                .setSourceTopic("prompts").setSourcePartition(0).setSourceOffset(1).build();
        try {
            return bytes(DeadLetter.getEncoder().encode(d));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }


    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    static Completion decode(byte[] value) {
        return io.flexstream.stream.CompletionReader.decode(value);
    }
}
