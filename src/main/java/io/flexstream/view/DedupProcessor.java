package io.flexstream.view;

import io.flexstream.stream.avro.Completion;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Keeps the first completion of each prompt id and forwards only that one. At-least-once delivery upstream means a
 * prompt may be completed twice (a crash before commit, a block finished for a revoked partition); every duplicate
 * answers the same prompt, so the first is as good as any and keeping it makes the output idempotent: a replay of the
 * completions topic forwards nothing new.
 *
 * <p>Correct across instances because the nodes key completions by prompt id with the default partitioner, so every
 * duplicate of an id lands in the same partition and therefore in the same task and store.
 */
final class DedupProcessor implements Processor<String, Completion, String, Completion> {

    private final String storeName;
    private ProcessorContext<String, Completion> context;
    private KeyValueStore<String, Completion> store;

    DedupProcessor(String storeName) {
        this.storeName = storeName;
    }

    @Override
    public void init(ProcessorContext<String, Completion> context) {
        this.context = context;
        this.store = context.getStateStore(storeName);
    }

    @Override
    public void process(Record<String, Completion> record) {
        if (store.putIfAbsent(record.key(), record.value()) == null) {
            context.forward(record);
        }
    }
}
