package io.flexstream.model.tokenizer;

/**
 * GPT-2's reversible map from the 256 byte values to printable characters, so that BPE can work on strings without
 * whitespace or control characters in them. Bytes 33-126, 161-172 and 174-255 stand for themselves; the other 68
 * (controls, space, DEL, NBSP, soft hyphen) take code points 256, 257, ... in increasing byte order. A space therefore
 * becomes 'Ġ' (U+0120) and a newline 'Ċ' (U+010A), which is how they appear in vocab.json and merges.txt.
 */
final class ByteAlphabet {

    private static final char[] BYTE_TO_CHAR = new char[256];
    /** Indexed by character, -1 where the character stands for no byte; 256 + 68 entries cover every mapped char. */
    private static final int[] CHAR_TO_BYTE = new int[256 + 68];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            char c = printable ? (char) b : (char) next++;
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteAlphabet() {
    }

    /** The character that stands for {@code b} (any int; only its low 8 bits count). */
    static char charOf(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte (0-255) that {@code c} stands for, or -1 when {@code c} is not one of the 256 byte characters. */
    static int byteOf(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** The byte-level spelling of UTF-8 bytes: one character per byte. */
    static String spell(byte[] bytes) {
        char[] chars = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            chars[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        }
        return new String(chars);
    }
}
