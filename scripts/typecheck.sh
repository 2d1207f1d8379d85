#!/usr/bin/env bash
# mypy over BitWitness laid out as it is installed: the stages inside the bitwitness package.
#
# Why not plain "mypy bitwitness acquire verify report": mypy does not run bitwitness/__init__.py,
# which is what puts the stages inside the package in a checkout. Given the checkout's folders it
# names them "acquire", "verify", "report", finds no "bitwitness.acquire", and types every import
# of a stage's module as Any, so nothing that crosses a stage is checked. Here mypy reads a view of
# the tree as pyproject's package-dir installs it (symbolic links under .mypy_cache/, rebuilt on
# every run) and reports each error under its path in the repository.
# Usage: scripts/typecheck.sh [MYPY OPTIONS]; MYPY names the mypy to run (default: .venv's, else
# the one on PATH).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mypy="${MYPY:-$root/.venv/bin/mypy}"
[[ -x "$mypy" ]] || mypy=mypy
view="$root/.mypy_cache/installed-layout"
rm -rf "$view"
mkdir -p "$view/bitwitness"
for entry in "$root"/bitwitness/*; do
    ln -s "$entry" "$view/bitwitness/"
done
for stage in acquire verify report; do
    ln -s "$root/$stage" "$view/bitwitness/$stage"
done
cd "$view"
"$mypy" --config-file "$root/pyproject.toml" --cache-dir "$root/.mypy_cache" "$@" bitwitness \
    | sed -E 's#^bitwitness/(acquire|verify|report)/#\1/#'
