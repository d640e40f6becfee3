package io.flexstream.model.tokenizer;

import java.util.Arrays;

/** A growable list of primitive token ids, so encoding a long text does not box every id. */
final class IdList {

    private int[] ids;
    private int size;

    IdList(int capacity) {
        ids = new int[Math.max(capacity, 4)];
    }

    void add(int id) {
        if (size == ids.length) {
            ids = Arrays.copyOf(ids, ids.length * 2);
        }
        ids[size++] = id;
    }

    void addAll(int[] more) {
        if (size + more.length > ids.length) {
            ids = Arrays.copyOf(ids, Math.max(ids.length * 2, size + more.length));
        }
        System.arraycopy(more, 0, ids, size, more.length);
        size += more.length;
    }

    int[] toArray() {
        return Arrays.copyOf(ids, size);
    }
}
