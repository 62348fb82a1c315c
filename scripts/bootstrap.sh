#!/usr/bin/env bash
# Installs what the project needs on Debian 12 / Python 3.11: Debian packages, a virtualenv in .venv
# and the Python packages. Safe to run again: each step is skipped when already done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

APT_PACKAGES=(tesseract-ocr tesseract-ocr-jpn tesseract-ocr-eng fonts-noto-cjk fonts-dejavu-core postgresql-client redis-server
  caddy age gnupg
  libgl1 libglib2.0-0)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.recall-installed"
want="$(cat pyproject.toml $( [ -f requirements.lock ] && echo requirements.lock ) | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Python packages (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  if [ -f requirements.lock ]; then
    .venv/bin/python -m pip install -q -r requirements.lock
  fi
  # compat mode puts the checkout on sys.path, so packages added later import without reinstalling
  .venv/bin/python -m pip install -q -e ".[dev]" --config-settings editable_mode=compat
  echo "$want" > "$stamp"
fi
