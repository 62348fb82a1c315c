#!/usr/bin/env bash
# The main job on embedded defaults: installs what it needs, then runs `recall demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
exec .venv/bin/recall demo "$@"
