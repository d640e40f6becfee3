package io.flexstream.stream;

import org.apache.kafka.common.TopicPartition;

/**
 * Where a prompt record came from, and under which ownership of its partition this node read it.
 *
 * @param partition the source topic-partition
 * @param offset    the record's offset
 * @param epoch     the node-local assignment generation at which this node gained {@code partition} (see
 *                  {@link PollLoop}): a result whose epoch is not the partition's current one is published but
 *                  never committed
 */
public record RecordOrigin(TopicPartition partition, long offset, long epoch) {

    @Override
    public String toString() {
        return partition + "@" + offset;
    }
}
