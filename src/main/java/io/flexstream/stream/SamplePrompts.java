package io.flexstream.stream;

import java.util.List;

/** A dozen varied English prompts for the demo and the pipeline benchmark. */
public final class SamplePrompts {

    public static final List<String> ENGLISH = List.of(
            "The capital of France is",
            "Once upon a time, in a small village by the sea,",
            "The three most important things to remember when learning to cook are",
            "Kafka is a distributed event streaming platform that",
            "Here is a short poem about the autumn rain:",
            "The best way to explain gravity to a child is",
            "In the year 2050, cities will",
            "A good night's sleep matters because",
            "The recipe for a simple tomato soup starts with",
            "Dear customer, thank you for your order. Unfortunately,",
            "The difference between a virus and a bacterium is",
            "Summarize the plot of Romeo and Juliet in one sentence:");

    private SamplePrompts() {
    }

    /** Prompt {@code i}, cycling through {@link #ENGLISH}. */
    public static String get(int i) {
        return ENGLISH.get(Math.floorMod(i, ENGLISH.size()));
    }
}
