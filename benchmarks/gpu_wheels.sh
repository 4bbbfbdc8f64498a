#!/usr/bin/env bash
# Downloads into .whl/ the wheels gpu_suite.sh needs on a machine that has torch but not the rest
# (the device image: Python 3.12, manylinux x86_64). Run here, where PyPI is reachable.
# The versions are those this checkout's environment runs its tests with (`pip list`), so the device runs
# the same textual, plotext and sqlite-utils; anything the environment lacks is fetched at its newest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl
names="textual textual-plotext plotext sqlite-utils sqlite-fts4 click click-default-group tabulate platformdirs
  rich pygments markdown-it-py mdurl mdit-py-plugins linkify-it-py uc-micro-py tomli-w"
specs=()
for n in $names; do
  v=$($PY -m pip show "$n" 2>/dev/null | sed -n 's/^Version: //p' || true)
  specs+=("$n${v:+==$v}")
done
$PY -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${specs[@]}"
ls -la .whl
