package io.flexstream.policy;

import java.util.List;

/**
 * No policy satisfies the constraints. The message names the binding constraint(s), e.g. "GPU memory in decode: needs
 * 23.1 GB, capacity 15 GB x alpha 0.8", found by the elastic LP (see {@link PolicySearch#diagnose}).
 */
public final class InfeasiblePolicyException extends RuntimeException {

    private final List<String> binding;

    public InfeasiblePolicyException(String context, List<String> binding) {
        super(context + ": " + (binding.isEmpty() ? "no feasible policy" : String.join("; ", binding)));
        this.binding = List.copyOf(binding);
    }

    /** The violated constraints at the least-violating placement, largest relative violation first. */
    public List<String> binding() {
        return binding;
    }
}
