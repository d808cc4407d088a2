#!/usr/bin/env bash
# Installs what tfc needs on a fresh Debian machine, only when it is missing:
# LLVM 14's C API (llvm-dev), OpenBLAS (libopenblas-dev), and NumPy + pytest for the reference tests,
# HF tokenizers for the tokenizer tests.
set -euo pipefail

missing=()
[ -f /usr/lib/llvm-14/include/llvm-c/Core.h ] || missing+=(llvm-dev)
{ [ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ]; } || missing+=(libopenblas-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Checked from / : run in the repository, `import tokenizers` would find its tokenizers/ folder
# (a namespace package) and pass without HF tokenizers installed.
if ! (cd / && python3 -c 'import numpy, pytest; from tokenizers import Tokenizer') 2>/dev/null; then
  echo "setup: installing numpy, pytest and tokenizers"
  python3 -m pip install -q numpy pytest tokenizers
fi
command -v swift >/dev/null || { echo "setup: error: swift is not on PATH (tfc needs Swift 5.10 or later)" >&2; exit 1; }
