package io.flexstream.model.tokenizer;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Encoding is on the request path of every prompt, so 1 MB of English must encode well under a second once warm.
 * The text is drawn from GPT-2's own whole-word tokens with a Zipf-like distribution, which is what makes the word
 * cache effective on real prose. Prints its timing; asserts the best of five runs is under a second, loose enough
 * for a shared 2-core CI machine.
 */
class Gpt2TokenizerPerformanceTest {

    @Test
    void encodesOneMegabyteOfEnglishWellUnderASecond() throws Exception {
        Gpt2Tokenizer gpt2 = Gpt2TestFiles.gpt2();
        String text = englishLikeText(1 << 20);
        int[] warm = gpt2.encode(text); // fills the cache and lets the JIT compile the hot paths
        long best = Long.MAX_VALUE;
        for (int run = 0; run < 5; run++) {
            long start = System.nanoTime();
            int[] ids = gpt2.encode(text);
            best = Math.min(best, System.nanoTime() - start);
            assertEquals(warm.length, ids.length);
        }
        long decodeStart = System.nanoTime();
        String back = gpt2.decode(warm);
        long decodeNanos = System.nanoTime() - decodeStart;
        assertEquals(text, back);
        System.out.printf("Gpt2Tokenizer: encode %d chars -> %d ids in %.1f ms (best of 5, warm); decode %.1f ms;"
                        + " %d cores%n", text.length(), warm.length, best / 1e6, decodeNanos / 1e6,
                Runtime.getRuntime().availableProcessors());
        assertTrue(best < 1_000_000_000L, "encoding 1 MB took " + best / 1e6 + " ms");
    }

    private static String englishLikeText(int chars) throws Exception {
        List<String> words = new ArrayList<>();
        OptVocabularyWriter.gpt2Vocabulary().forEach((token, id) -> {
            // GPT-2 spells a leading space 'Ġ'; keep whole lower-case words, most frequent (lowest ids) first.
            if (token.length() > 2 && token.charAt(0) == 'Ġ' && token.substring(1).chars().allMatch(Character::isLowerCase)) {
                words.add(token.substring(1)); // encoder.json lists tokens in id order
            }
        });
        Random random = new Random(42);
        StringBuilder text = new StringBuilder(chars + 100);
        String[] punctuation = {".", ",", ";", "!", "?", ".\n\n", ":"};
        boolean sentenceStart = true;
        while (text.length() < chars) {
            // Zipf-like: the cube of a uniform variable favours the most common (lowest-id) words.
            double u = random.nextDouble();
            String word = words.get((int) (u * u * u * (words.size() - 1)));
            if (sentenceStart) {
                word = Character.toUpperCase(word.charAt(0)) + word.substring(1);
            }
            text.append(text.isEmpty() || text.charAt(text.length() - 1) == '\n' ? "" : " ").append(word);
            sentenceStart = false;
            if (random.nextInt(12) == 0) {
                String p = punctuation[random.nextInt(punctuation.length)];
                text.append(p);
                sentenceStart = !p.equals(",") && !p.equals(";") && !p.equals(":");
            } else if (random.nextInt(40) == 0) {
                text.append(" ").append(random.nextInt(10_000));
            }
        }
        return text.toString();
    }
}
