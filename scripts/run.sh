#!/bin/sh
# One command to run attestd locally on SQLite: installs dependencies,
# builds, and starts the service with example role configs.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
exec make run
