#!/usr/bin/env bash
# The main job, offline, on CPU: train a bilinear model on the built-in story corpus, print
# sample stories, and write its weight-based analysis (eigenvalue spectra + identity check).
#   bash scripts/demo.sh [--out runs/demo] [--minutes 7] [--small]
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
tl-bilinear demo "$@"
