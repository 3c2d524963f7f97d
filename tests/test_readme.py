"""The README's Quick start runs as printed, and what its comments claim holds."""

import re
from pathlib import Path

import torch

from tl_bilinear.analysis import eigendecompose

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs_and_its_claims_hold():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md (Quick start)", "exec"), namespace)  # noqa: S102 (our own README)
    model, U, eig, cache, x = (namespace[name] for name in ("model", "U", "eig", "cache", "x"))
    assert eig.eigenvalues.shape == (2, 16) and eig.eigenvectors.shape == (2, 16, model.cfg.d_model)
    assert (eig.eigenvalues.abs().diff(dim=1) <= 0).all()  # sorted by |λ|, largest first
    # "with k=None it equals cache["blocks.1.hook_mlp_out"] @ U.T exactly"
    full = eigendecompose(model, layer=1, directions=U)
    expected = cache["blocks.1.hook_mlp_out"] @ U.T
    torch.testing.assert_close(full.reconstruct(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
