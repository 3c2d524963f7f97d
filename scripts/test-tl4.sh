#!/usr/bin/env bash
# The test suite's TransformerLens 4.x part, in its own environment (.venv-tl4/, created on first use):
#   bash scripts/test-tl4.sh [pytest args]
# Training (tl_bilinear.train, `tl-bilinear train`) and the SAELens interop need TransformerLens 3.9 and
# are tested by scripts/test.sh; here: the model/checkpoint layer, Hugging Face export/import, the
# analysis core, the views, the README quick start, and the cross-version equivalence (against the
# 3.9 environment .venv/ when it exists, as in CI after scripts/test.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TL_BILINEAR_TL4_VENV:-$ROOT/.venv-tl4}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
stamp="$VENV/.tl_bilinear_tl4_installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/pip" install -q "${TL_BILINEAR_TORCH:-torch==2.13.0}"
    # this checkout's dependencies with TransformerLens 4.x; the package itself comes from PYTHONPATH
    deps="$("$VENV/bin/python" - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(d for d in project["dependencies"] + project["optional-dependencies"]["dev"]
                if not d.startswith(("transformer-lens", "torch"))))
PY
)"
    mapfile -t dep_list <<< "$deps"
    "$VENV/bin/pip" install -q "transformer-lens>=4.3,<5" "${dep_list[@]}"
    touch "$stamp"
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${TL_BILINEAR_OTHER_PYTHON:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then
    export TL_BILINEAR_OTHER_PYTHON="$ROOT/.venv/bin/python"  # the TransformerLens 3.9 environment
fi
cd "$ROOT"
"$VENV/bin/python" -c "import transformer_lens, importlib.metadata as m; assert m.version('transformer-lens') >= '4', m.version('transformer-lens')"
"$VENV/bin/python" -m pytest -p no:cacheprovider \
    tests/test_compat.py tests/test_cross_version.py tests/test_hf.py tests/test_model_io.py tests/test_readme.py \
    tests/analysis tests/viz tests/data \
    --ignore=tests/viz/test_browser.py \
    --deselect tests/analysis/test_exactness.py::test_identity_with_rms_gain_and_mlp_biases \
    --deselect tests/data/test_tokenizer.py::test_transformer_lens_model_uses_it \
    "$@"
