package io.flexstream.kernel.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

import java.lang.foreign.MemorySegment;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

import jcuda.driver.CUdeviceptr;

/**
 * Device copies of the weights the kernels were handed, kept across calls so that a weight crosses PCIe once rather
 * than once per call: the device tier of the cuda backend. Least recently used copies are evicted to stay within a
 * byte budget; a weight that does not fit even in an empty cache is uploaded into a transient buffer per call.
 *
 * <p>The key is the host segment's memory scope (by identity), address and size. The scope makes freed memory safe:
 * a segment allocated later at the same address belongs to another arena, so it misses, and entries whose scope is
 * no longer alive are dropped. What the key cannot see is a live segment rewritten in place, which the offloading
 * engine does to its weight working buffers (layer after layer at one address). Hence two modes:
 * <ul>
 *   <li>{@link WeightTrust#STABLE}: a weight segment is never written while alive (the in-memory engine): a hit is
 *       used as is.</li>
 *   <li>{@link WeightTrust#VERIFY}: every use hashes the host bytes ({@link ContentHash}, all of them) and a hit
 *       counts only if the hash matches the one taken at upload. Costs one read of the weight per call on the host,
 *       still less than the copy into pinned memory plus the PCIe transfer it saves.</li>
 * </ul>
 *
 * <p>Entries used by the call in progress are never evicted (the call's kernels may still read them): the owner
 * brackets every call with {@link #beginCall()}.
 */
final class WeightCache implements AutoCloseable {

    private record Key(MemorySegment.Scope scope, long address, long bytes) {
    }

    private static final class Entry {
        final CUdeviceptr pointer;
        final long bytes;
        long hash;
        long lastCall;

        Entry(CUdeviceptr pointer, long bytes) {
            this.pointer = pointer;
            this.bytes = bytes;
        }
    }

    private final long budget;
    private final WeightTrust trust;
    private final TransferPipeline transfers;
    private final ContentHash contentHash;
    private final long pieceBytes;
    private final LinkedHashMap<Key, Entry> entries = new LinkedHashMap<>(64, 0.75f, true);
    private final DeviceMemory.Device[] transient_ = {new DeviceMemory.Device(), new DeviceMemory.Device(),
            new DeviceMemory.Device()};
    private int transientUsed;
    private long used;
    private long call;
    private long hits;
    private long misses;
    private long uploadedBytes;

    WeightCache(long budgetBytes, WeightTrust trust, TransferPipeline transfers, long pieceBytes) {
        if (budgetBytes < 0) {
            throw new IllegalArgumentException("device weight budget must be >= 0, got " + budgetBytes);
        }
        this.budget = budgetBytes;
        this.trust = trust;
        this.transfers = transfers;
        this.contentHash = new ContentHash(transfers.copier());
        this.pieceBytes = pieceBytes;
    }

    /** Starts a kernel call: entries used from here on are protected from eviction until the next call. */
    void beginCall() {
        call++;
        transientUsed = 0;
    }

    /**
     * The device copy of {@code bytes} bytes at the start of {@code host}, uploading it on a miss. Compute must wait
     * for the transfer pipeline's weightsReady event (the pipeline's compute stream does).
     */
    CUdeviceptr get(MemorySegment host, long bytes) {
        if (host.byteSize() < bytes) {
            throw new IllegalArgumentException("weight segment holds " + host.byteSize() + " bytes, the call needs "
                    + bytes);
        }
        Key key = new Key(host.scope(), host.address(), bytes);
        long hash = trust == WeightTrust.VERIFY ? contentHash.of(host, bytes) : 0;
        Entry e = entries.get(key);
        if (e != null && (trust == WeightTrust.STABLE || e.hash == hash)) {
            e.lastCall = call;
            hits++;
            return e.pointer;
        }
        misses++;
        uploadedBytes += bytes;
        if (e == null) {
            e = allocate(key, bytes);
        }
        if (e == null) { // larger than what the budget leaves: a buffer for this call only
            if (transientUsed == transient_.length) {
                throw new IllegalStateException("more than " + transient_.length + " uncached weights in one call");
            }
            DeviceMemory.Device buffer = transient_[transientUsed++];
            buffer.ensure(bytes); // earlier calls are complete, and this call has not used this buffer yet
            transfers.uploadWeight(host, bytes, buffer.pointer(), pieceBytes);
            return buffer.pointer();
        }
        e.hash = hash;
        e.lastCall = call;
        transfers.uploadWeight(host, bytes, e.pointer, pieceBytes);
        return e.pointer;
    }

    /** A new entry, evicting dead and then least recently used ones; null if the budget cannot make room. */
    private Entry allocate(Key key, long bytes) {
        if (bytes > budget) {
            return null;
        }
        entries.entrySet().removeIf(x -> {
            if (!x.getKey().scope().isAlive() && x.getValue().lastCall != call) {
                free(x.getValue());
                return true;
            }
            return false;
        });
        Iterator<Map.Entry<Key, Entry>> lru = entries.entrySet().iterator();
        while (used + bytes > budget && lru.hasNext()) {
            Entry victim = lru.next().getValue();
            if (victim.lastCall != call) {
                free(victim);
                lru.remove();
            }
        }
        if (used + bytes > budget) {
            return null;
        }
        CUdeviceptr p = new CUdeviceptr();
        cuMemAlloc(p, Math.max(bytes, 1)); // a zero-byte allocation is an error in the driver
        used += bytes;
        Entry e = new Entry(p, bytes);
        entries.put(key, e);
        return e;
    }

    private void free(Entry e) {
        transfers.synchronize();
        cuMemFree(e.pointer);
        used -= e.bytes;
    }

    long usedBytes() {
        return used;
    }

    long budgetBytes() {
        return budget;
    }

    /** "hits 1200, misses 26 (1.3 GiB uploaded)". */
    String statistics() {
        return String.format("weight cache: %d hits, %d misses, %.2f GiB uploaded, %.2f of %.2f GiB held", hits,
                misses, uploadedBytes / (double) (1L << 30), used / (double) (1L << 30), budget / (double) (1L << 30));
    }

    @Override
    public void close() {
        transfers.synchronize();
        for (Entry e : entries.values()) {
            cuMemFree(e.pointer);
        }
        entries.clear();
        used = 0;
        for (DeviceMemory.Device d : transient_) {
            d.close();
        }
    }
}
