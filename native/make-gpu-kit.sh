#!/usr/bin/env bash
# Packs what native/check-gpu.sh needs onto a GPU machine that has no JDK 25 and no Maven repository (the lent
# device machines), built here with Maven:
#   OUT/lib/flexstream.jar          the application (the kernels' fatbin inside)
#   OUT/lib/flexstream-tests.jar    the test classes (the GPU differential and end-to-end tests)
#   OUT/lib/*.jar                   the runtime dependencies the engine, `generate`, `bench generate` and `model`
#                                   load: Kafka, Scala, RocksDB, OR-Tools and the compression natives are left out
#                                   (so `serve`, `demo`, `view` and `policy` do not run from the kit), and JCuda's
#                                   natives are cut to libJCudaDriver
#   OUT/lib/junit-platform-console-standalone-*.jar   runs the tests without Maven
#   OUT/jre/                        with --jre: a jlink'd Java 25 runtime with jdk.incubator.vector (~45 MB; the
#                                   whole kit then stays under the device tool's 64 MiB carry limit)
# Usage: native/make-gpu-kit.sh [--jre] [OUT]   (default OUT: target/gpu-kit, git-ignored; carry it as that path)
# Environment: JAVA_HOME (a JDK 25, else /usr/lib/jvm/*25*), BUILD_DIR (Maven build dir, default /tmp/build-gpu-kit).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jre=0
if [ "${1:-}" = "--jre" ]; then jre=1; shift; fi
out="${1:-$here/target/gpu-kit}"
build="${BUILD_DIR:-/tmp/build-gpu-kit}"

if [ -z "${JAVA_HOME:-}" ] || ! "$JAVA_HOME/bin/java" -version 2>&1 | grep -q 'version "25'; then
  JAVA_HOME="$(ls -d /usr/lib/jvm/*25* 2>/dev/null | head -1 || true)"
fi
if [ -z "$JAVA_HOME" ] || [ ! -x "$JAVA_HOME/bin/jlink" ]; then
  echo "make-gpu-kit: no JDK 25 found (set JAVA_HOME)" >&2; exit 1
fi
export JAVA_HOME

echo "make-gpu-kit: building into $build" >&2
(cd "$here" && ./mvnw -q -B -o -Dbuild.dir="$build" -DskipTests package >&2)

rm -rf "$out"
mkdir -p "$out/lib"
cp "$build/flexstream.jar" "$out/lib/"
"$JAVA_HOME/bin/jar" cf "$out/lib/flexstream-tests.jar" -C "$build/test-classes" .
for jar in "$build"/lib/*.jar; do
  case "$(basename "$jar")" in
    kafka*|scala*|rocksdbjni-*|ortools-*|zstd-*|snappy-*|lz4-*|protobuf-*|argparse4j-*|jose4j-*|jopt-*|log4j-*|\
    metrics-core-*|pcollections-*|caffeine-*|hash4j-*|re2j-*|commons-*|HdrHistogram-*) ;;  # not on the check's path
    jcuda-natives-*)                                       # only the driver binding: no runtime, NVRTC or PTX compiler
      tmp="$(mktemp -d)"
      (cd "$tmp" && unzip -q "$jar" 'lib/libJCudaDriver-*' && "$JAVA_HOME/bin/jar" cf "$out/lib/$(basename "$jar")" lib)
      rm -rf "$tmp" ;;
    *) cp "$jar" "$out/lib/" ;;
  esac
done
console="$(ls ~/.m2/repository/org/junit/platform/junit-platform-console-standalone/*/*.jar | sort | tail -1)"
cp "$console" "$out/lib/"

if [ "$jre" = 1 ]; then
  modules=java.base,java.logging,java.management,java.naming,java.sql,java.xml,jdk.httpserver
  modules=$modules,jdk.incubator.vector,jdk.unsupported
  "$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files --compress=zip-9 \
    --output "$out/jre" 2>&1 | grep -v incubator || true
  if command -v strip >/dev/null; then strip --strip-unneeded "$out/jre/lib/server/libjvm.so"; fi  # 29 -> 25 MB
fi
summary="$(ls "$out/lib" | wc -l) jars"
[ "$jre" = 1 ] && summary="$summary, jre $(du -sh "$out/jre" | cut -f1)"
echo "make-gpu-kit: $out is $(du -sh "$out" | cut -f1) ($summary)" >&2
