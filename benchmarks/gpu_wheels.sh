#!/usr/bin/env bash
# Fetch, on a machine with the package registry, the wheels the GPU machine lacks into .whl/
# (git-ignored), for its Python (3.12 by default); gpu_check.sh installs them there. Its image
# has torch, torchvision, numpy, rich, Pillow and nvidia-ml-py; the engine and the CLI also
# need platformdirs, and the app the Textual stack (to try `cnn-tui` there over SSH).
#
#   bash benchmarks/gpu_wheels.sh [PYTHON_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
PYV="${1:-3.12}"
rm -rf .whl && mkdir .whl
# Versions as pyproject.toml allows them; one version of each (two would stop the install).
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl \
  platformdirs "textual>=8.2,<9" "textual-plotext>=1.0" "plotext>=5.3,<6" "textual-image>=0.8" \
  mdit-py-plugins linkify-it-py uc-micro-py
ls -1 .whl
du -sh .whl
