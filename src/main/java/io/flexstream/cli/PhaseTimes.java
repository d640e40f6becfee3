package io.flexstream.cli;

import io.flexstream.engine.GenerationListener;

/** Wall seconds of a generation's prefill and of its decode steps, as the engine reports them to a listener. */
final class PhaseTimes implements GenerationListener {
    double prefill;
    double decode;

    @Override
    public void prefillDone(int sequences, int promptTokens, long nanos) {
        prefill += nanos / 1e9;
    }

    @Override
    public void decodeStep(int step, int maxSteps, int active, long nanos) {
        decode += nanos / 1e9;
    }
}
