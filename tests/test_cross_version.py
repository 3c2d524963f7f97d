"""One checkpoint, three implementations: HookedTransformer (TL 3.9), TransformerBridge (TL 4.x), transformers.

The checkpoint's weights come from a seeded generator (not ``make_model``, whose
initialisation differs between TransformerLens versions). In this process the model of
the installed TransformerLens is compared with Hugging Face's ``LlamaForCausalLM`` (an
independent implementation) and with the bilinear form written out in the tests. With
``TL_BILINEAR_OTHER_PYTHON`` set to the interpreter of an environment with the other
TransformerLens major version (``scripts/test-tl4.sh`` sets it), ``measure`` also runs
there and the numbers are compared across versions.
"""

import os
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

import tl_bilinear
from tests.helpers.reference import bilinear_mlp
from tl_bilinear.analysis import eigendecompose, mlp_input
from tl_bilinear.compat import TL4, TL_VERSION
from tl_bilinear.model import from_state_dict

ROOT = Path(__file__).resolve().parents[1]
N_LAYERS, D_MODEL, N_HEADS, D_MLP, N_CTX, D_VOCAB = 2, 32, 4, 64, 24, 97
TOKENS = torch.randint(0, D_VOCAB, (2, N_CTX), generator=torch.Generator().manual_seed(7))


def write_checkpoint(path: Path) -> Path:
    """A bilinear checkpoint with seeded weights (sharp attention, so a rotary mix-up shows)."""
    gen = torch.Generator().manual_seed(0)
    d_head = D_MODEL // N_HEADS

    def normal(*shape, std):
        return torch.randn(*shape, generator=gen) * std

    state = {"embed.W_E": normal(D_VOCAB, D_MODEL, std=1.0), "unembed.W_U": normal(D_MODEL, D_VOCAB, std=0.2)}
    state["unembed.b_U"] = torch.zeros(D_VOCAB)
    for layer in range(N_LAYERS):
        attn, mlp = f"blocks.{layer}.attn.", f"blocks.{layer}.mlp."
        for name in ("W_Q", "W_K", "W_V"):
            state[attn + name] = normal(N_HEADS, D_MODEL, d_head, std=0.6)
        state[attn + "W_O"] = normal(N_HEADS, d_head, D_MODEL, std=0.2)
        for name in ("b_Q", "b_K", "b_V"):
            state[attn + name] = torch.zeros(N_HEADS, d_head)
        state[attn + "b_O"] = torch.zeros(D_MODEL)
        state[mlp + "W_gate"], state[mlp + "W_in"] = normal(D_MODEL, D_MLP, std=0.3), normal(D_MODEL, D_MLP, std=0.3)
        state[mlp + "W_out"] = normal(D_MLP, D_MODEL, std=0.2)
        state[mlp + "b_in"], state[mlp + "b_out"] = torch.zeros(D_MLP), torch.zeros(D_MODEL)
    cfg = tl_bilinear.bilinear_config(
        n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, d_mlp=D_MLP, n_ctx=N_CTX, d_vocab=D_VOCAB
    )
    return tl_bilinear.save(from_state_dict(cfg, state), path)


def measure(checkpoint: Path) -> dict:
    """Logits, every hook_mlp_out, and the eigendecomposition of layer 1 for W_U[:, 3]."""
    model = tl_bilinear.load(checkpoint)
    names = [f"blocks.{layer}.hook_mlp_out" for layer in range(N_LAYERS)] + ["blocks.1.ln2.hook_normalized"]
    with torch.no_grad():
        logits, cache = model.run_with_cache(TOKENS, names_filter=lambda name: name in names)
    eig = eigendecompose(model, 1, model.W_U[:, 3].detach(), method="dense", dtype=torch.float64)
    return {
        "logits": logits.detach(),
        "mlp_out": torch.stack([cache[name] for name in names[:-1]]),
        "mlp_in": mlp_input(model, 1, cache),
        "eigenvalues": eig.eigenvalues[0],
        "eigenvectors": eig.eigenvectors[0],
        "version": TL_VERSION,
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("xver") / "ckpt")


@pytest.fixture(scope="module")
def here(checkpoint):
    return measure(checkpoint)


def test_model_class_matches_the_installed_version(checkpoint):
    model = tl_bilinear.load(checkpoint)
    assert type(model).__name__ == ("TransformerBridge" if TL4 else "HookedTransformer")


def test_transformers_gives_the_same_logits_and_mlp_out(checkpoint, here, tmp_path):
    tl_bilinear.to_hf(tl_bilinear.load(checkpoint), tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    outs = {}
    hooks = [
        hf.model.layers[layer].mlp.register_forward_hook(lambda m, i, o, layer=layer: outs.__setitem__(layer, o))
        for layer in range(N_LAYERS)
    ]
    with torch.no_grad():
        logits = hf(TOKENS).logits
    for hook in hooks:
        hook.remove()
    assert here["logits"].std() > 0.5
    assert (logits - here["logits"]).abs().max() <= 1e-4
    assert (torch.stack([outs[layer] for layer in range(N_LAYERS)]) - here["mlp_out"]).abs().max() <= 1e-4


def test_mlp_out_and_eigendecomposition_match_the_bilinear_form(checkpoint, here):
    """hook_mlp_out is the bilinear MLP of mlp_input, and u·mlp(x) = Σ λ (v·x)² (reference written here)."""
    model = tl_bilinear.load(checkpoint)
    mlp = model.blocks[1].mlp
    W_gate, W_in, W_out = (w.detach().double() for w in (mlp.W_gate, mlp.W_in, mlp.W_out))
    x = here["mlp_in"].double()
    ref = bilinear_mlp(x, W_gate, W_in, W_out)
    torch.testing.assert_close(here["mlp_out"][1].double(), ref, atol=1e-5, rtol=1e-4)
    u = model.W_U[:, 3].detach().double()
    quadratic = ((x @ here["eigenvectors"].T) ** 2 * here["eigenvalues"]).sum(-1)
    torch.testing.assert_close(quadratic, ref @ u, atol=1e-9, rtol=1e-9)


OTHER = os.environ.get("TL_BILINEAR_OTHER_PYTHON")


@pytest.mark.skipif(not OTHER, reason="set TL_BILINEAR_OTHER_PYTHON to an interpreter with the other TransformerLens")
def test_the_other_transformer_lens_gives_the_same_numbers(checkpoint, here, tmp_path):
    out = tmp_path / "other.pt"
    code = (
        "import sys, torch; from pathlib import Path; from tests.test_cross_version import measure; "
        "torch.save(measure(Path(sys.argv[1])), sys.argv[2])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run([OTHER, "-c", code, str(checkpoint), str(out)], check=True, cwd=ROOT, env=env, timeout=600)
    other = torch.load(out)
    assert int(other["version"][0]) != int(TL_VERSION[0]), (other["version"], TL_VERSION)
    assert (other["logits"] - here["logits"]).abs().max() <= 1e-4
    assert (other["mlp_out"] - here["mlp_out"]).abs().max() <= 1e-4  # float32, |mlp_out| up to ~15
    torch.testing.assert_close(other["eigenvalues"], here["eigenvalues"], atol=1e-9, rtol=1e-9)
    overlap = (other["eigenvectors"] * here["eigenvectors"]).sum(-1).abs()  # the sign of each v is arbitrary
    assert overlap.min() >= 1 - 1e-6, overlap.min()
