#!/bin/sh
# One command to run the whole test suite: installs dependencies, builds
# (normal and ASan+UBSan), runs unit, integration and fuzz-corpus tests,
# and prints "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
exec make test
