package io.flexstream.model.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Byte-level BPE over one pre-tokenized piece of text, exactly as GPT-2 (and Hugging Face's GPT2Tokenizer) does it:
 * spell the piece's UTF-8 bytes with {@link ByteAlphabet}, then repeatedly take the adjacent pair with the best
 * (lowest) merge rank and merge every occurrence of it, scanning left to right, until no adjacent pair has a rule.
 *
 * <p>Merging works on token ids rather than strings: every merge's pieces and result are checked to be in the
 * vocabulary at load time, so a symbol can only take part in a merge if it has an id, and the final lookup of
 * symbols in the vocabulary is free. Thread-safe: immutable apart from the concurrent word cache.
 */
final class BpeModel {

    /** Beyond this many cached words the cache is dropped and refilled, so memory stays bounded on endless streams. */
    private static final int CACHE_LIMIT = 1 << 17;
    /** Longer pieces (base64 blobs, long runs of spaces) are rare enough that caching them would only waste memory. */
    private static final int CACHE_MAX_PIECE_CHARS = 64;

    private final int[] byteIds;
    /** (left id << 32 | right id) -> (rank << 32 | merged id). */
    private final Map<Long, Long> merges;
    private final int unkId;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    /**
     * @param vocab     byte-level token string -> id
     * @param rules     merge rules in priority order; each must have both pieces and the result in {@code vocab}
     * @param unkId     id for a byte whose character is not in the vocabulary, or -1 when there is no unk token
     * @param vocabName the file the vocabulary came from, for error messages
     * @throws TokenizerException naming the rule's file and line when a rule does not fit the vocabulary
     */
    BpeModel(Map<String, Integer> vocab, List<Merge> rules, int unkId, String vocabName) {
        this.unkId = unkId;
        this.byteIds = new int[256];
        for (int b = 0; b < 256; b++) {
            byteIds[b] = vocab.getOrDefault(String.valueOf(ByteAlphabet.charOf(b)), -1);
        }
        this.merges = new HashMap<>(rules.size() * 2);
        for (int rank = 0; rank < rules.size(); rank++) {
            Merge rule = rules.get(rank);
            int left = idOf(vocab, rule.left(), rule, "piece", vocabName);
            int right = idOf(vocab, rule.right(), rule, "piece", vocabName);
            int merged = idOf(vocab, rule.left() + rule.right(), rule, "result", vocabName);
            // A repeated rule takes its last rank, as HF's dict(zip(merges, range(n))) does.
            merges.put(pairKey(left, right), ((long) rank << 32) | merged);
        }
    }

    private static int idOf(Map<String, Integer> vocab, String token, Merge rule, String role, String vocabName) {
        Integer id = vocab.get(token);
        if (id == null) {
            throw new TokenizerException(rule.where() + ": merge '" + rule.left() + " " + rule.right() + "' has "
                    + role + " '" + token + "' that is not in " + vocabName + " (vocab/merges mismatch)");
        }
        return id;
    }

    private static long pairKey(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    /** The ids of one pre-tokenized piece (a word with its leading space, a number, a run of whitespace...). */
    int[] encodePiece(String piece) {
        int[] cached = cache.get(piece);
        if (cached != null) {
            return cached;
        }
        int[] ids = merge(piece.getBytes(StandardCharsets.UTF_8));
        if (piece.length() <= CACHE_MAX_PIECE_CHARS) {
            if (cache.size() >= CACHE_LIMIT) {
                cache.clear();
            }
            cache.put(piece, ids);
        }
        return ids;
    }

    private int[] merge(byte[] bytes) {
        int[] symbols = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            symbols[i] = byteIds[bytes[i] & 0xFF];
        }
        int length = symbols.length;
        while (length > 1) {
            long best = Long.MAX_VALUE;
            int bestAt = -1;
            for (int i = 0; i + 1 < length; i++) {
                if (symbols[i] < 0 || symbols[i + 1] < 0) {
                    continue; // a byte without a token can never be part of a rule
                }
                Long rule = merges.get(pairKey(symbols[i], symbols[i + 1]));
                if (rule != null && rule < best) {
                    best = rule;
                    bestAt = i;
                }
            }
            if (bestAt < 0) {
                break;
            }
            int left = symbols[bestAt];
            int right = symbols[bestAt + 1];
            int merged = (int) best;
            // Every occurrence of the pair merges in this round, left to right, as in GPT-2's reference code:
            // "a a a" with rule "a a" becomes "aa a", never "a aa".
            int out = 0;
            for (int i = 0; i < length; ) {
                if (i + 1 < length && symbols[i] == left && symbols[i + 1] == right) {
                    symbols[out++] = merged;
                    i += 2;
                } else {
                    symbols[out++] = symbols[i++];
                }
            }
            length = out;
        }
        int[] ids = Arrays.copyOf(symbols, length);
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0) {
                if (unkId < 0) {
                    throw new IllegalStateException("a byte of the text has no token in the vocabulary"
                            + " and the tokenizer has no unk token");
                }
                ids[i] = unkId;
            }
        }
        return ids;
    }
}
