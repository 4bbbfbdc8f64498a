#!/usr/bin/env bash
# Downloads into .whl/ the wheels gpu_suite.sh needs on a machine that has torch but not the rest
# (Python 3.12, manylinux x86_64, pure-Python wheels mostly). Run here, where PyPI is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl textual textual-plotext plotext sqlite-utils sqlite-fts4 click-default-group platformdirs \
  mdit-py-plugins linkify-it-py uc-micro-py tomli-w
ls -la .whl
