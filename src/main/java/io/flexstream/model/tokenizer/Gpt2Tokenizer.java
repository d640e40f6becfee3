package io.flexstream.model.tokenizer;

import java.nio.file.Path;
import java.util.Comparator;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * GPT-2 byte-level BPE as Hugging Face's {@code GPT2Tokenizer} applies it to OPT checkpoints: the same pre-tokenization,
 * byte alphabet, merges, special tokens and decoding, so that ids and text equal what {@code transformers} produces.
 *
 * <p>Immutable and thread-safe; one instance serves every consumer thread. Encoding caches the BPE result of each
 * pre-tokenized piece, since natural text repeats the same few thousand words.
 */
public final class Gpt2Tokenizer {

    /**
     * GPT-2's pre-tokenization pattern. UNICODE_CHARACTER_CLASS makes {@code \s} mean Unicode White_Space (as in the
     * Rust tokenizers and tiktoken) rather than Java's ASCII-only default, so "a\u3000b" splits like Hugging Face.
     * Alternatives are tried in order at each position, so contractions win over letters and {@code \s+(?!\S)} leaves
     * the last space of a run to join the following word (" b").
     */
    private static final Pattern PIECES = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    private final BpeModel bpe;
    /** Indexed by id: the bytes a token stands for; null for ids no token has. */
    private final byte[][] tokenBytes;
    private final SpecialTokens specials;
    /** Matches any added token literally, longest first; null when there are none. */
    private final Pattern literalTokens;
    private final boolean addBos;
    private final boolean addPrefixSpace;
    private final boolean cleanUpSpaces;

    Gpt2Tokenizer(BpeModel bpe, byte[][] tokenBytes, SpecialTokens specials, boolean addBos, boolean addPrefixSpace,
                  boolean cleanUpSpaces) {
        this.bpe = bpe;
        this.tokenBytes = tokenBytes;
        this.specials = specials;
        this.addBos = addBos && specials.bos() >= 0;
        this.addPrefixSpace = addPrefixSpace;
        this.cleanUpSpaces = cleanUpSpaces;
        // Longest first, so that "</s>" is not cut short by a shorter added token that is its prefix.
        this.literalTokens = specials.literal().isEmpty() ? null : Pattern.compile(specials.literal().keySet().stream()
                .sorted(Comparator.comparingInt(String::length).reversed().thenComparing(Comparator.naturalOrder()))
                .map(Pattern::quote)
                .collect(Collectors.joining("|")));
    }

    /**
     * Loads from a Hugging Face checkpoint directory: vocab.json + merges.txt (preferred, as the slow GPT2Tokenizer
     * reads them), else tokenizer.json; tokenizer_config.json and special_tokens_map.json are honoured when present.
     *
     * @throws TokenizerException (unchecked) naming the file and the problem: missing file, malformed JSON, or a
     *                            merge whose pieces or result are not in the vocabulary
     */
    public static Gpt2Tokenizer load(Path modelDir) {
        return TokenizerFiles.read(modelDir);
    }

    /** Plain BPE ids of {@code text}; no special tokens are added, but added tokens written in the text are kept. */
    public int[] encode(String text) {
        return encode(text, false);
    }

    /** The ids the model sees for a prompt: {@link #bosId()} first when add_bos_token is set (OPT's default). */
    public int[] encodePrompt(String text) {
        return encode(text, addBos);
    }

    private int[] encode(String text, boolean withBos) {
        Objects.requireNonNull(text, "text");
        if (addPrefixSpace) {
            text = " " + text;
        }
        IdList ids = new IdList(text.length() / 3 + 2);
        if (withBos) {
            ids.add(specials.bos());
        }
        int from = 0;
        if (literalTokens != null) {
            Matcher m = literalTokens.matcher(text);
            while (m.find()) {
                encodeOrdinary(text, from, m.start(), ids);
                ids.add(specials.literal().get(m.group()));
                from = m.end();
            }
        }
        encodeOrdinary(text, from, text.length(), ids);
        return ids.toArray();
    }

    private void encodeOrdinary(String text, int from, int to, IdList ids) {
        if (from == to) {
            return;
        }
        Matcher m = PIECES.matcher(text).region(from, to);
        while (m.find()) {
            ids.addAll(bpe.encodePiece(m.group()));
        }
    }

    /** The text of {@code ids}, special tokens skipped; invalid UTF-8 becomes U+FFFD as in HF (errors="replace"). */
    public String decode(int[] ids) {
        return decode(ids, 0, ids.length);
    }

    /**
     * The text of {@code ids[from, to)} (to exclusive). Ids that name no token are skipped rather than failing, as
     * Hugging Face's fast tokenizer does: OPT's embedding has more rows (50272) than the tokenizer has tokens.
     */
    public String decode(int[] ids, int from, int to) {
        Objects.checkFromToIndex(from, to, ids.length);
        int size = 0;
        for (int i = from; i < to; i++) {
            byte[] bytes = bytesOf(ids[i]);
            size += bytes == null ? 0 : bytes.length;
        }
        byte[] utf8 = new byte[size];
        int at = 0;
        for (int i = from; i < to; i++) {
            byte[] bytes = bytesOf(ids[i]);
            if (bytes != null) {
                System.arraycopy(bytes, 0, utf8, at, bytes.length);
                at += bytes.length;
            }
        }
        String text = Utf8Replacing.decode(utf8, utf8.length);
        return cleanUpSpaces ? cleanUpSpaces(text) : text;
    }

    private byte[] bytesOf(int id) {
        if (id < 0 || id >= tokenBytes.length || specials.special().contains(id)) {
            return null;
        }
        return tokenBytes[id];
    }

    /** transformers' clean_up_tokenization, applied only when tokenizer_config.json asks for it. */
    private static String cleanUpSpaces(String text) {
        return text.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
                .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s")
                .replace(" 've", "'ve").replace(" 're", "'re");
    }

    /** Begin-of-sequence id, or -1 when the checkpoint has none. OPT: {@code </s>} = 2. */
    public int bosId() {
        return specials.bos();
    }

    /** End-of-sequence id, or -1 when the checkpoint has none. OPT: {@code </s>} = 2. */
    public int eosId() {
        return specials.eos();
    }

    /** Padding id, or -1 when the checkpoint has none. OPT: {@code <pad>} = 1. */
    public int padId() {
        return specials.pad();
    }

    /** Unknown-token id, or -1 when the checkpoint has none. OPT: {@code <unk>} = 3. */
    public int unkId() {
        return specials.unk();
    }

    /** Highest token id + 1, added tokens included (OPT: 50265; the model's embedding may have more rows). */
    public int vocabSize() {
        return tokenBytes.length;
    }

    /** Whether {@code id} is a special token, which {@link #decode} skips. */
    public boolean isSpecial(int id) {
        return specials.special().contains(id);
    }

    /** Whether {@link #encodePrompt} prepends {@link #bosId()}. */
    public boolean addsBos() {
        return addBos;
    }
}
