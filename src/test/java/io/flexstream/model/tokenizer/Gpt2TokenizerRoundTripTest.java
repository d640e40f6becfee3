package io.flexstream.model.tokenizer;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.Map;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** encode then decode gives the text back, for any valid Unicode; cut multi-byte characters decode like HF. */
class Gpt2TokenizerRoundTripTest {

    /** Code point pools that stress the pre-tokenizer and the byte alphabet. */
    private static final int[][] POOLS = {
            range('a', 'z'), range('A', 'Z'), range('0', '9'),
            "'.,;:!?-_()[]{}<>/\\\"#$%&*+=@^`|~".codePoints().toArray(),
            {' ', ' ', ' ', '\t', '\n', '\r', 0x0B, 0x0C, 0x85, 0xA0, 0x2028, 0x3000, 0x200B},
            range(0x0300, 0x036F),           // combining marks
            range(0x4E00, 0x4FFF),           // CJK ideographs
            range(0x0400, 0x04FF),           // Cyrillic
            range(0x0600, 0x06FF),           // Arabic
            range(0x1F300, 0x1F64F),         // emoji (4-byte UTF-8)
            {0x200D, 0xFE0F, 0x1F3FD},       // ZWJ, variation selector, skin tone
            range(0x00, 0x1F),               // controls
            range(0x80, 0xFF),               // Latin-1 incl. soft hyphen and the remapped bytes
            {0xFFFD, 0xFEFF, 0x10FFFF, 0xE000},
    };

    private static Gpt2Tokenizer truncated;

    @BeforeAll
    static void writeTruncated(@TempDir Path dir) throws IOException {
        OptVocabularyWriter.write(dir, 1000);
        truncated = Gpt2Tokenizer.load(dir);
    }

    @Test
    void randomUnicodeRoundTrips() {
        Random random = new Random(20261126);
        Gpt2Tokenizer gpt2 = Gpt2TestFiles.gpt2();
        for (int n = 0; n < 2000; n++) {
            String text = randomText(random, 1 + random.nextInt(80));
            assertEquals(text, gpt2.decode(gpt2.encode(text)), () -> "GPT-2 round trip of " + escape(text));
            int[] ids = truncated.encode(text);
            for (int id : ids) {
                assertTrue(id >= 0 && id < 1000, () -> "id " + id + " outside a 1000-token vocabulary");
            }
            assertEquals(text, truncated.decode(ids), () -> "truncated round trip of " + escape(text));
        }
    }

    @Test
    void decodingHalfAnEmojiGivesReplacementAndTheWholeDecodesRight() {
        Gpt2Tokenizer gpt2 = Gpt2TestFiles.gpt2();
        int[] ids = gpt2.encode("🙂"); // F0 9F | 99 82
        assertArrayEquals(new int[] {8582, 25081}, ids);
        assertEquals("\uFFFD", gpt2.decode(ids, 0, 1)); // a truncated 4-byte sequence is one replacement
        assertEquals("\uFFFD\uFFFD", gpt2.decode(ids, 1, 2)); // two stray continuation bytes are two
        assertEquals("🙂", gpt2.decode(ids, 0, 2));
        assertEquals("", gpt2.decode(ids, 1, 1));
        int[] chinese = gpt2.encode("你好"); // 你 = E4 BD A0 is split across tokens 19526 (E4 BD) and 254 (A0)
        assertEquals("\uFFFD", gpt2.decode(chinese, 0, 1));
        assertEquals("你好", gpt2.decode(chinese));
    }

    @Test
    void decodingAnEncodedSurrogateGivesOneReplacementPerByteLikeHf() throws IOException {
        Gpt2Tokenizer gpt2 = Gpt2TestFiles.gpt2();
        Map<String, Integer> vocab = OptVocabularyWriter.gpt2Vocabulary();
        int[] ids = IntStream.of(0xED, 0xA0, 0x80) // U+D800 spelled in UTF-8, which a model can sample byte by byte
                .map(b -> vocab.get(String.valueOf(ByteAlphabet.charOf(b))))
                .toArray();
        assertEquals("\uFFFD\uFFFD\uFFFD", gpt2.decode(ids));
    }

    /** Expected strings from Python's bytes.decode("utf-8", "replace"), which Hugging Face's decode uses. */
    @Test
    void invalidUtf8IsReplacedLikePython() {
        String[][] cases = {
                {"f09f", "\uFFFD"},
                {"9982", "\uFFFD\uFFFD"},
                {"eda080", "\uFFFD\uFFFD\uFFFD"},     // an encoded surrogate: Java's own decoder gives one U+FFFD
                {"f08080", "\uFFFD\uFFFD\uFFFD"},     // overlong
                {"f4908080", "\uFFFD\uFFFD\uFFFD\uFFFD"}, // above U+10FFFF
                {"e080", "\uFFFD\uFFFD"},
                {"c0af", "\uFFFD\uFFFD"},
                {"61ff62", "a\uFFFDb"},
                {"e282", "\uFFFD"},
                {"e28261", "\uFFFDa"},
                {"f09f9982", "🙂"},
        };
        for (String[] c : cases) {
            byte[] bytes = HexFormat.of().parseHex(c[0]);
            assertEquals(c[1], Utf8Replacing.decode(bytes, bytes.length), () -> "decoding " + c[0]);
        }
        Random random = new Random(7);
        for (int n = 0; n < 1000; n++) {
            String text = randomText(random, 40);
            byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
            assertEquals(text, Utf8Replacing.decode(bytes, bytes.length));
            // On arbitrary bytes it must agree with Java's decoder wherever Java's follows the same rule: compare
            // the count of characters that are not replacements, which never differs.
            byte[] noise = new byte[random.nextInt(20)];
            random.nextBytes(noise);
            String ours = Utf8Replacing.decode(noise, noise.length);
            String javas = new String(noise, StandardCharsets.UTF_8);
            assertEquals(javas.replace("\uFFFD", ""), ours.replace("\uFFFD", ""));
        }
    }

    static String randomText(Random random, int codePoints) {
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < codePoints; i++) {
            int[] pool = POOLS[random.nextInt(POOLS.length)];
            text.appendCodePoint(pool[random.nextInt(pool.length)]);
        }
        return text.toString();
    }

    private static int[] range(int from, int toInclusive) {
        int[] cps = new int[toInclusive - from + 1];
        for (int i = 0; i < cps.length; i++) {
            cps[i] = from + i;
        }
        return cps;
    }

    private static String escape(String text) {
        StringBuilder out = new StringBuilder("\"");
        text.codePoints().forEach(cp -> out.append(cp < 0x20 || cp > 0x7E ? String.format("\\u{%X}", cp)
                : Character.toString(cp)));
        return out.append('"').toString();
    }
}
