package io.flexstream.model.tokenizer;

/**
 * One BPE merge rule as read from a file: {@code left} followed by {@code right} becomes {@code left + right}. Rules
 * are kept in file order, which is their priority (earlier wins). {@code where} locates the rule for error messages,
 * e.g. "merges.txt line 7" or "tokenizer.json model.merges[5]".
 */
record Merge(String left, String right, String where) {
}
