#!/bin/sh
# Builds what is missing or stale, and costs one `find` when nothing is: the native library
# (native/build/libvasp.so and the libvirt hook native/build/vasp-hook, after the Debian
# packages they need) and the engine bundle
# (dist/, tools/bundle.ts). .build-stamp records the start of the last good build; any
# input newer than it (a file changed, or a directory whose entries changed) means a rebuild.
#   sh tools/build.sh          build when needed
#   sh tools/build.sh --force  build now
set -eu
cd "$(dirname "$0")/.."

stamp=.build-stamp
inputs="src ffi mod.ts deno.json deno.lock native/src native/include native/hook native/Makefile tools/bundle.ts
  tools/build.sh"
if [ "${1:-}" != --force ] && [ -f "$stamp" ] && [ -f dist/vasp.js ] &&
  [ -f dist/wal_checkpointer_worker.js ] && [ -f native/build/libvasp.so ] &&
  [ -f native/build/vasp-hook ]; then
  # shellcheck disable=SC2086 # $inputs is a list on purpose
  newer=$(find $inputs -newer "$stamp" -print -quit)
  [ -n "$newer" ] || exit 0
fi

sh tools/deps.sh build
make -s -C native
# Taken before bundling: a file changed while the bundle is made is newer than the stamp.
: >"$stamp.new"
deno run --allow-all tools/bundle.ts
mv "$stamp.new" "$stamp"
