#!/usr/bin/env bash
# Runs once on every worker before its first task (on EC2: on every new instance).
# Install what your tasks need here (apt-get, pip, julia packages, ...). gq retries it with a
# timeout; exit 0 (or create a READY file, as the older tool required) when it succeeded.
set -euo pipefail
command -v awk >/dev/null || { echo "awk is missing" >&2; exit 1; }
command -v seq >/dev/null || { echo "seq is missing" >&2; exit 1; }
echo "install ok on $(uname -n)"
touch READY
