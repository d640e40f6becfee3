/**
 * The offloading policy: how many sequences a block holds and where weights, KV cache and activations live, chosen by
 * a linear program over an analytic cost model fed by measured hardware constants (FLEXGEN.md sections 1 and 3).
 *
 * <ul>
 *   <li>{@link io.flexstream.policy.Policy}: the result, shares in PERCENT (FlexGen's {@code --percent} order WG WC CG
 *   CC HG HC), batch sizes, delegation and compression flags.</li>
 *   <li>{@link io.flexstream.policy.HardwareProfile}: capacities, link bandwidths and compute rates in base units,
 *   read from JSON; built-in {@code t4-flexgen} (FlexGen's fitted T4 constants) and {@code cpu-2core-estimate}.</li>
 *   <li>{@link io.flexstream.policy.ModelShape} and {@link io.flexstream.policy.Workload}: what runs.</li>
 *   <li>{@link io.flexstream.policy.CostModel}: per (gbs, nb), prefill and decode time per layer and peak memory per
 *   tier as {@link io.flexstream.policy.LinearForm}s of the shares, in two modes (FlexGen's, term for term, and ours).
 *   {@link io.flexstream.policy.Formulation} holds the rows and evaluates a fixed policy.</li>
 *   <li>{@link io.flexstream.policy.PolicySearch}: GLOP per (gbs, nb) inside FlexGen's enumeration, pins as equality
 *   rows ({@link io.flexstream.policy.Pins}), infeasibility named by an elastic LP
 *   ({@link io.flexstream.policy.InfeasiblePolicyException}).</li>
 *   <li>{@link io.flexstream.policy.PolicyCache}: policies per (prompt, generation) length bucket for the consumer's
 *   micro-batcher.</li>
 * </ul>
 *
 * <p>Units throughout: bytes, seconds, FLOP/s; LP shares are fractions, policy shares percent. GB in messages is 2^30
 * bytes, as in FlexGen.
 */
package io.flexstream.policy;
