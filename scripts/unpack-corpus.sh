#!/usr/bin/env bash
# Unpacks the labelled mail corpus kept in the repository (tests/corpus.tar.xz: 3,125 real
# messages in ham/ and spam/, and the README.md that describes them) into tests/corpus/,
# where the end-to-end tests (gannet_tests::corpus) and the benchmarks read it. Prints that
# directory's absolute path, so a script can take it with CORPUS=$(scripts/unpack-corpus.sh).
#
# Idempotent: nothing is done when tests/corpus/ was unpacked from this same archive (the
# archive's sha256 is kept in tests/.corpus.sha256, written last). tests/corpus/ holds only
# the archive's files: the benchmarks walk the whole tree. Both are ignored by git.
set -euo pipefail
tests=$(cd "$(dirname "$0")/../tests" && pwd)
archive=$tests/corpus.tar.xz
dest=$tests/corpus
stamp=$tests/.corpus.sha256
# One unpacker at a time (a lock on the archive itself: no lock file to clean up).
exec 9<"$archive"
flock 9
sum=$(sha256sum "$archive" | cut -d' ' -f1)
if [ -d "$dest/ham" ] && [ -d "$dest/spam" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    echo "$dest"
    exit 0
fi
tmp=$(mktemp -d "$tests/.corpus-unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$archive" -C "$tmp"
rm -f "$stamp"
rm -rf "$dest"
mv "$tmp/corpus" "$dest"
echo "$sum" >"$stamp"
echo "unpacked the corpus: $(find "$dest/ham" -type f | wc -l) ham, $(find "$dest/spam" -type f | wc -l) spam in $dest" >&2
echo "$dest"
