package io.flexstream.kernel.cuda;

import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Runs a test class only where the cuda backend works; elsewhere the class is reported as skipped with the probe's
 * reason (a condition, unlike an assumption in {@code @BeforeAll}, shows up as skipped in the surefire report).
 */
public final class RequiresGpu implements ExecutionCondition {

    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        return switch (CudaProbe.probe()) {
            case CudaProbe.Available(DeviceInfo device) ->
                    ConditionEvaluationResult.enabled("GPU: " + device.describe());
            case CudaProbe.Unavailable(String reason) ->
                    ConditionEvaluationResult.disabled("skipped: no usable GPU: " + reason);
        };
    }
}
