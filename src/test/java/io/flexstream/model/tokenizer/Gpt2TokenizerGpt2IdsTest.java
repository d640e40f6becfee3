package io.flexstream.model.tokenizer;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * GPT-2's own vocabulary and merges, loaded as a plain vocab.json + merges.txt directory, must give GPT-2's ids.
 * The expected ids come from OpenAI's tiktoken ("gpt2" encoding, npm tiktoken 1.0.22, the Rust core compiled to
 * WASM), an implementation independent of this one; "Hello world" -> [15496, 995] and the gpt-3-encoder README's
 * example sentence are also widely published.
 */
class Gpt2TokenizerGpt2IdsTest {

    static Stream<Arguments> knownEncodings() {
        return Stream.of(
                Arguments.of("Hello world", new int[] {15496, 995}),
                Arguments.of(" Hello", new int[] {18435}),
                Arguments.of("Hello, world!", new int[] {15496, 11, 995, 0}),
                Arguments.of("I'm don't", new int[] {40, 1101, 836, 470}),
                Arguments.of("I'll they're we've he'd it's", new int[] {40, 1183, 484, 821, 356, 1053, 339, 1549, 340, 338}),
                // Contractions are case-sensitive in GPT-2's pattern: "'S" is punctuation then a letter.
                Arguments.of("it'S OK'", new int[] {270, 6, 50, 7477, 6}),
                Arguments.of("12345 678 3.14159", new int[] {10163, 2231, 718, 3695, 513, 13, 1415, 19707}),
                Arguments.of("$1,000.00 (approx.)", new int[] {3, 16, 11, 830, 13, 405, 357, 1324, 13907, 2014}),
                Arguments.of("The year 2024 had 366 days.", new int[] {464, 614, 48609, 550, 44856, 1528, 13}),
                Arguments.of("a   b", new int[] {64, 220, 220, 275}),
                Arguments.of("    ", new int[] {220, 220, 220, 220}),
                Arguments.of("  leading", new int[] {220, 3756}),
                Arguments.of("trailing  ", new int[] {9535, 4386, 220, 220}),
                Arguments.of("line1\nline2\n\n  indented\n", new int[] {1370, 16, 198, 1370, 17, 628, 220, 773, 4714, 198}),
                Arguments.of("\n\n\n", new int[] {628, 198}),
                Arguments.of("hello  \n  world", new int[] {31373, 220, 220, 198, 220, 995}),
                Arguments.of("tab\tsep\r\nend", new int[] {8658, 197, 325, 79, 201, 198, 437}),
                // Unicode whitespace: an ideographic space and a no-break space are \s, split off on their own.
                Arguments.of("a\u3000b", new int[] {64, 5099, 222, 65}),
                Arguments.of("x\u00a0y", new int[] {87, 1849, 88}),
                // ...so they never join punctuation, and a run of them splits like a run of spaces.
                Arguments.of("a\u3000\u3000b", new int[] {64, 5099, 222, 5099, 222, 65}),
                Arguments.of("hi!\u00a0there", new int[] {5303, 0, 1849, 8117}),
                Arguments.of("wait\u2026\u00a0\u00a0ok", new int[] {17077, 1399, 1849, 1849, 482}),
                Arguments.of("end\u2003\u2003", new int[] {437, 447, 225, 447, 225}),
                // Every occurrence of the best pair merges in the same round.
                Arguments.of("aaaaaaaa", new int[] {24794, 24794}),
                Arguments.of("!!!!!!!!", new int[] {34635}),
                Arguments.of("========", new int[] {2559}),
                Arguments.of("🙂", new int[] {8582, 25081}),
                Arguments.of("🙂🙂 hi", new int[] {8582, 25081, 8582, 25081, 23105}),
                Arguments.of("日本語のテキスト", new int[] {33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302}),
                Arguments.of("你好，世界！", new int[] {19526, 254, 25001, 121, 171, 120, 234, 10310, 244, 45911, 234, 171, 120, 223}),
                Arguments.of("Привет мир", new int[] {140, 253, 21169, 18849, 38857, 16843, 20375, 12466, 120, 18849, 21169}),
                Arguments.of("naïve café", new int[] {2616, 38776, 40304}),
                Arguments.of("e\u0301\u0300 combining", new int[] {68, 136, 223, 136, 222, 19771}),
                Arguments.of("snake_case_name = camelCase + 42;", new int[] {16184, 539, 62, 7442, 62, 3672, 796, 41021, 20448, 1343, 5433, 26}),
                Arguments.of("This is an example sentence to try encoding out on!", new int[] {1212, 318, 281, 1672, 6827, 284, 1949, 21004, 503, 319, 0}),
                Arguments.of("The quick brown fox jumps over the lazy dog.", new int[] {464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13}),
                Arguments.of("", new int[] {}));
    }

    @ParameterizedTest
    @MethodSource("knownEncodings")
    void encodesLikeGpt2(String text, int[] expected) {
        Gpt2Tokenizer gpt2 = Gpt2TestFiles.gpt2();
        assertArrayEquals(expected, gpt2.encode(text), () -> "ids of \"" + text + "\" were "
                + Arrays.toString(gpt2.encode(text)));
        assertEquals(text, gpt2.decode(expected));
    }

    @Test
    void gpt2DirectoryWithoutConfigFallsBackToEndOfText() {
        Gpt2Tokenizer gpt2 = Gpt2TestFiles.gpt2();
        // No tokenizer_config.json: GPT-2's own default names <|endoftext|> for bos, eos and unk; there is no pad.
        assertEquals(50256, gpt2.bosId());
        assertEquals(50256, gpt2.eosId());
        assertEquals(-1, gpt2.padId());
        assertEquals(50257, gpt2.vocabSize());
        // A special token written in the text is that one id, as HF splits on special tokens before BPE.
        assertArrayEquals(new int[] {15496, 50256, 995}, gpt2.encode("Hello<|endoftext|> world"));
        assertEquals("Hello world", gpt2.decode(new int[] {15496, 50256, 995}));
        assertFalse(gpt2.isSpecial(15496));
    }

    @Test
    void cachedAndUncachedEncodingsAgree() {
        Gpt2Tokenizer gpt2 = Gpt2TestFiles.gpt2();
        String text = "The quick brown fox jumps over the lazy dog. ".repeat(50);
        int[] first = gpt2.encode(text);
        assertArrayEquals(first, gpt2.encode(text));
        // Ten tokens a sentence, each sentence's trailing space joining the next " The", and one lone space at the end.
        assertEquals(10 * 50 + 1, first.length);
    }
}
