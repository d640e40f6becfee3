package io.flexstream.model.tokenizer;

/**
 * UTF-8 to text with every invalid sequence replaced by U+FFFD exactly as Python's {@code bytes.decode("utf-8",
 * "replace")} does it (Unicode's "maximal subpart" practice, also the WHATWG decoder): a lead byte whose next byte is
 * out of range yields one U+FFFD and that next byte is read again as a new start. Hugging Face decodes GPT-2 tokens
 * that way. Java's own decoder agrees on truncated sequences but not on encoded surrogates or overlong forms
 * (ED A0 80 gives one U+FFFD in Java, three in Python), which a model can sample, so the rule is spelled out here.
 */
final class Utf8Replacing {

    private static final char REPLACEMENT = '\uFFFD';

    private Utf8Replacing() {
    }

    /** The text of {@code bytes[0, length)}. */
    static String decode(byte[] bytes, int length) {
        StringBuilder out = new StringBuilder(length);
        int codePoint = 0;
        int needed = 0; // continuation bytes still expected
        int seen = 0;
        int lower = 0x80; // allowed range of the next continuation byte; narrower right after E0, ED, F0, F4
        int upper = 0xBF;
        for (int i = 0; i < length; i++) {
            int b = bytes[i] & 0xFF;
            if (needed == 0) {
                if (b <= 0x7F) {
                    out.append((char) b);
                } else if (b >= 0xC2 && b <= 0xDF) {
                    needed = 1;
                    codePoint = b & 0x1F;
                } else if (b >= 0xE0 && b <= 0xEF) {
                    lower = b == 0xE0 ? 0xA0 : 0x80; // no overlong 3-byte forms
                    upper = b == 0xED ? 0x9F : 0xBF; // no surrogates
                    needed = 2;
                    codePoint = b & 0x0F;
                } else if (b >= 0xF0 && b <= 0xF4) {
                    lower = b == 0xF0 ? 0x90 : 0x80; // no overlong 4-byte forms
                    upper = b == 0xF4 ? 0x8F : 0xBF; // nothing above U+10FFFF
                    needed = 3;
                    codePoint = b & 0x07;
                } else {
                    out.append(REPLACEMENT); // stray continuation byte, C0, C1 or F5-FF
                }
                continue;
            }
            if (b < lower || b > upper) {
                out.append(REPLACEMENT);
                needed = 0;
                seen = 0;
                lower = 0x80;
                upper = 0xBF;
                i--; // this byte may start the next sequence
                continue;
            }
            lower = 0x80;
            upper = 0xBF;
            codePoint = (codePoint << 6) | (b & 0x3F);
            if (++seen == needed) {
                out.appendCodePoint(codePoint);
                needed = 0;
                seen = 0;
            }
        }
        if (needed != 0) {
            out.append(REPLACEMENT); // a truncated sequence at the end
        }
        return out.toString();
    }
}
