"""The TransformerLens 3.9 / 4.x layer: version range, the model class, the SiLU trap of compatibility mode."""

import copy

import pytest
import torch

import tl_bilinear
from tl_bilinear.compat import TL4, TL_VERSION, parse_version, require_tl3

only_tl4 = pytest.mark.skipif(not TL4, reason="TransformerBridge needs transformer-lens 4.x")


@pytest.mark.parametrize("text", ["3.8.2", "2.16.0", "5.0.0", "6.1"])
def test_unsupported_versions_are_refused_naming_the_range(text):
    with pytest.raises(ImportError, match=rf"supports transformer-lens>=3.9,<5.*{text} is installed"):
        parse_version(text)


def test_supported_versions():
    assert parse_version("3.9.0") == (3, 9)
    assert parse_version("4.3.0rc1") == (4, 3)
    assert TL4 == (parse_version(TL_VERSION)[0] == 4)


def test_make_model_gives_the_installed_model_class():
    model = tl_bilinear.make_model("ts-micro", seed=0)
    assert type(model).__name__ == ("TransformerBridge" if TL4 else "HookedTransformer")
    assert model.cfg.act_fn == "bilinear" and model.cfg.model_name == "ts-micro"
    same = tl_bilinear.make_model("ts-micro", seed=0)
    assert torch.equal(model.blocks[0].mlp.W_gate, same.blocks[0].mlp.W_gate)  # seeded
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.endswith("bias") or ".b_" in n)


def test_training_needs_tl3():
    if TL4:
        with pytest.raises(ImportError, match="training .* needs transformer-lens 3.9"):
            require_tl3("training (tl_bilinear.train, tl-bilinear train)")
    else:
        require_tl3("training")  # no-op


@pytest.mark.parametrize(
    "module, name",
    [("tl_bilinear", "anneal_to_bilinear"), ("tl_bilinear.convert", "finetune"), ("tl_bilinear.sae", "train_sae")],
)
def test_trainer_based_names_are_callables_or_one_clear_error(module, name):
    """Under 4.x the package imports, and what needs the trainer names the fix; under 3.9 it is there."""
    import importlib

    package = importlib.import_module(module)
    if TL4:
        with pytest.raises(ImportError, match=f"{module}.{name} needs transformer-lens 3.9"):
            getattr(package, name)
    else:
        assert callable(getattr(package, name))
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018


def bridges(tmp_path):
    """Every way the package hands out a bridge: make_model, load, from_hf."""
    model = tl_bilinear.make_model("ts-micro", seed=1, d_vocab=64)
    with torch.no_grad():  # weights large enough that SiLU vs identity shows
        for block in model.blocks:
            block.mlp.gate.weight.mul_(8)
    tl_bilinear.save(model, tmp_path / "ckpt")
    tl_bilinear.to_hf(model, tmp_path / "hf")
    return {
        "make_model": model,
        "load": tl_bilinear.load(tmp_path / "ckpt"),
        "from_hf": tl_bilinear.from_hf(tmp_path / "hf"),
    }


@only_tl4
def test_compatibility_mode_never_computes_swiglu(tmp_path):
    """Fails if the trap comes back: TL's weight-processing path swaps the bilinear MLP for SiLU."""
    tokens = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    routes = bridges(tmp_path)
    routes["deepcopy"] = copy.deepcopy(routes["load"])
    for route, bridge in routes.items():
        with torch.no_grad():
            before = bridge(tokens)
        try:
            bridge.enable_compatibility_mode()
        except ValueError as error:
            assert "SwiGLU" in str(error) and "no_processing=True" in str(error), route
        with torch.no_grad():
            assert torch.equal(bridge(tokens), before), route
        bridge.enable_compatibility_mode(no_processing=True)
        _, cache = bridge.run_with_cache(tokens, names_filter="blocks.0.mlp.hook_pre")
        with torch.no_grad():
            assert (bridge(tokens) - before).abs().max() <= 1e-5, route
        assert cache["blocks.0.mlp.hook_pre"].min() < -1  # no SiLU floor on the gate branch


@only_tl4
def test_the_trap_is_real_without_the_guard(tmp_path):
    """TL 4's own method (bypassing our guard) changes a bilinear model: why the guard exists."""
    from transformer_lens import TransformerBridge

    bridge = bridges(tmp_path)["load"]
    tokens = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = bridge(tokens).log_softmax(-1)
        TransformerBridge.enable_compatibility_mode(bridge, disable_warnings=True)
        after = bridge(tokens).log_softmax(-1)
    assert (after - before).abs().max() > 1e-2


@only_tl4
def test_bridge_set_tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    model = tl_bilinear.make_model("ts-micro", d_vocab=400)
    model.set_tokenizer(AutoTokenizer.from_pretrained(str(tokenizer_dir)), default_padding_side="right")
    assert model.to_tokens("happy dog").shape[0] == 1 and model.tokenizer.padding_side == "right"


@only_tl4
def test_cli_train_under_tl4_is_one_clear_error(tmp_path, capsys):
    from tests.helpers.cli import run_main

    status, err = run_main("train", "--preset", "ts-micro", "--out", tmp_path / "run", capsys=capsys)
    assert status == 2 and "needs transformer-lens 3.9" in err and err.count("\n") == 1
