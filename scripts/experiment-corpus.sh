#!/usr/bin/env bash
# The growth experiment's corpus (docs/experiments.md): the English fortune files of Debian's
# `fortunes` and `fortunes-min` packages (installed here when missing), as OUT/train.txt and
# OUT/valid.txt. Every 10th fortune is held out, so both halves cover every topic. The same packages give the same bytes; nothing random.
#   usage: scripts/experiment-corpus.sh OUT_DIR
set -euo pipefail

out=${1:?usage: scripts/experiment-corpus.sh OUT_DIR}
src=/usr/share/games/fortunes
if [ ! -f "$src/fortunes" ] || [ ! -f "$src/literature" ]; then
  echo "corpus: installing fortunes and fortunes-min"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fortunes fortunes-min >/dev/null
fi
mkdir -p "$out"
if [ -s "$out/train.txt" ] && [ -s "$out/valid.txt" ]; then
  echo "corpus: $out/train.txt and valid.txt exist ($(wc -c < "$out/train.txt") + $(wc -c < "$out/valid.txt") bytes)"
  exit 0
fi
# The text files only (not the .dat indexes nor the .u8 links), in byte order of their names;
# ascii-art is pictures, not English.
files=()
while IFS= read -r f; do files+=("$src/$f"); done < <(
  cd "$src" && find . -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' ! -name 'ascii-art' -printf '%f\n' | LC_ALL=C sort)
# A fortune ends at a line holding only '%'; each is written with its separator. The held-out
# fortunes are written round-robin over the files (each file's first, then each file's second, ...),
# so the first held-out windows, the ones tfc train evaluates, span every topic.
LC_ALL=C awk -v train="$out/train.txt.tmp" -v valid="$out/valid.txt.tmp" '
  FNR == 1 { file++ }
  { text = text $0 "\n" }
  /^%$/ {
    n++
    if (n % 10 == 0) { rank = ++held[file]; heldText[file, rank] = text; if (rank > ranks) ranks = rank }
    else printf "%s", text > train
    text = ""
  }
  END {
    if (text != "") printf "%s", text > train
    for (r = 1; r <= ranks; r++) for (f = 1; f <= file; f++) if ((f, r) in heldText) printf "%s", heldText[f, r] > valid
  }
' "${files[@]}"
mv "$out/train.txt.tmp" "$out/train.txt"
mv "$out/valid.txt.tmp" "$out/valid.txt"
echo "corpus: ${#files[@]} fortune files → $out/train.txt ($(wc -c < "$out/train.txt") bytes), $out/valid.txt ($(wc -c < "$out/valid.txt") bytes)"
