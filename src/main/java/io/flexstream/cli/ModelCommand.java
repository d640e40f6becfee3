package io.flexstream.cli;

import io.flexstream.model.Checkpoint;
import io.flexstream.model.CheckpointException;
import io.flexstream.model.OptConfig;
import io.flexstream.model.OptWeights;
import io.flexstream.model.SafetensorsFile;
import io.flexstream.model.SafetensorsTensor;
import io.flexstream.model.TinyModel;
import io.flexstream.model.tokenizer.OptVocabularyWriter;
import io.flexstream.tensor.DType;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** {@code flexstream model}: create small random OPT checkpoints and inspect checkpoint directories. */
@Command(name = "model",
        mixinStandardHelpOptions = true,
        description = "Create and inspect OPT checkpoints (Hugging Face layout, safetensors weights).",
        subcommands = {ModelCommand.Tiny.class, ModelCommand.Info.class})
public final class ModelCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** {@code model tiny DIR}: a random OPT checkpoint with tokenizer files, loadable like a downloaded one. */
    @Command(name = "tiny", mixinStandardHelpOptions = true,
            description = "Write a random OPT checkpoint (config.json, safetensors, tokenizer files) to DIR.")
    static final class Tiny implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "DIR", description = "Directory to write (created if missing).")
        Path dir;

        @Option(names = "--hidden", defaultValue = "64", description = "hidden_size (default: ${DEFAULT-VALUE}).")
        int hidden;

        @Option(names = "--layers", defaultValue = "2", description = "Decoder layers (default: ${DEFAULT-VALUE}).")
        int layers;

        @Option(names = "--heads", defaultValue = "4", description = "Attention heads (default: ${DEFAULT-VALUE}).")
        int heads;

        @Option(names = "--ffn", description = "ffn_dim (default: 4 x --hidden).")
        Integer ffn;

        @Option(names = "--vocab", defaultValue = "50272",
                description = "vocab_size; OPT's tokenizer has 50265 tokens (default: ${DEFAULT-VALUE}).")
        int vocab;

        @Option(names = "--max-positions", defaultValue = "2048",
                description = "max_position_embeddings (default: ${DEFAULT-VALUE}).")
        int maxPositions;

        @Option(names = "--word-embed-proj-dim",
                description = "word_embed_proj_dim; differs from --hidden only in opt-350m-like models"
                        + " (default: --hidden).")
        Integer wordEmbedProjDim;

        @Option(names = "--post-ln", defaultValue = "false",
                description = "Post-LayerNorm layers and no final LayerNorm, as opt-350m (default: ${DEFAULT-VALUE}).")
        boolean postLn;

        @Option(names = "--seed", defaultValue = "0", description = "Random seed (default: ${DEFAULT-VALUE}).")
        long seed;

        @Option(names = "--dtype", defaultValue = "F32",
                description = "Stored precision: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
        DType dtype;

        @Option(names = "--untied-lm-head", defaultValue = "false",
                description = "Store a separate lm_head.weight instead of tying it to the embedding"
                        + " (default: ${DEFAULT-VALUE}).")
        boolean untiedLmHead;

        @Option(names = "--bare-names", defaultValue = "false",
                description = "Store names without the \"model.\" prefix, as bare OPTModel checkpoints do"
                        + " (default: ${DEFAULT-VALUE}).")
        boolean bareNames;

        @Option(names = "--shards", defaultValue = "1",
                description = "Number of safetensors files; more than 1 writes an index (default: ${DEFAULT-VALUE}).")
        int shards;

        @Override
        public Integer call() {
            OptConfig config;
            TinyModel.Options options;
            try {
                config = OptConfig.custom(hidden, layers, heads, ffn == null ? 4 * hidden : ffn, vocab, maxPositions,
                        wordEmbedProjDim == null ? hidden : wordEmbedProjDim, !postLn);
                options = new TinyModel.Options(untiedLmHead, !bareNames, shards);
                if (vocab < OptVocabularyWriter.MIN_VOCAB_SIZE) {
                    throw new IllegalArgumentException("--vocab must be at least " + OptVocabularyWriter.MIN_VOCAB_SIZE
                            + " (4 special tokens and 256 byte tokens), got " + vocab);
                }
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "invalid model shape: " + e.getMessage());
            }
            try {
                TinyModel.write(dir, config, seed, dtype, options);
            } catch (CheckpointException e) {
                spec.commandLine().getErr().println("flexstream model tiny: " + e.getMessage());
                return 1;
            }
            spec.commandLine().getOut().printf("wrote %s: %,d parameters, %s%n", dir, config.parameterCount(), dtype);
            return 0;
        }
    }

    /** {@code model info DIR}: what a checkpoint holds, and whether it has every tensor its config calls for. */
    @Command(name = "info", mixinStandardHelpOptions = true,
            description = "Print the config, tensors, parameter count, dtypes and sizes of a checkpoint directory.")
    static final class Info implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "DIR", description = "Checkpoint directory.")
        Path dir;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            try (Checkpoint ckpt = Checkpoint.open(dir)) {
                OptConfig c = ckpt.config();
                out.printf("checkpoint  %s%n", ckpt.dir());
                out.printf("config      hidden_size=%d layers=%d heads=%d (head dim %d) ffn_dim=%d vocab_size=%d%n",
                        c.hiddenSize(), c.numLayers(), c.numHeads(), c.headDim(), c.ffnDim(), c.vocabSize());
                out.printf("            max_positions=%d word_embed_proj_dim=%d %s bias=%b ln_affine=%b"
                                + " torch_dtype=%s%n",
                        c.maxPositionEmbeddings(), c.wordEmbedProjDim(), c.doLayerNormBefore() ? "pre-LN" : "post-LN",
                        c.enableBias(), c.layerNormElementwiseAffine(), c.torchDtype());
                long elements = 0;
                long fileBytes = 0;
                Map<DType, Long> byDtype = new TreeMap<>();
                for (String name : ckpt.tensorNames()) {
                    SafetensorsTensor t = ckpt.tensor(name);
                    elements += t.elementCount();
                    byDtype.merge(t.dtype(), t.elementCount(), Long::sum);
                }
                for (SafetensorsFile f : ckpt.files()) {
                    fileBytes += f.fileBytes();
                }
                out.printf("tensors     %d in %d file(s), %,d bytes on disk%n", ckpt.tensorNames().size(),
                        ckpt.files().size(), fileBytes);
                out.printf("parameters  %,d stored (%,d for the config, lm_head %s)%n", elements, c.parameterCount(),
                        ckpt.has("lm_head.weight") ? "untied" : "tied");
                byDtype.forEach((t, n) -> out.printf("dtype       %s: %,d elements%n", t, n));
                out.printf("fp32 bytes  %,d once loaded%n", elements * Float.BYTES);
                OptWeights.validate(ckpt);
                out.println("weights     every expected tensor present with the right shape");
            } catch (CheckpointException e) {
                out.flush();
                spec.commandLine().getErr().println("flexstream model info: " + e.getMessage());
                return 1;
            }
            return 0;
        }
    }
}
