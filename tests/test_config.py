"""Registration of act_fn="bilinear", configs, presets and make_model."""

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.utilities.activation_functions import SUPPORTED_ACTIVATIONS

import tl_bilinear
from tl_bilinear.activation import bilinear


def test_registration_is_idempotent_and_in_place():
    tl_bilinear.register()
    tl_bilinear.register()
    assert SUPPORTED_ACTIVATIONS["bilinear"] is bilinear


def test_register_refuses_to_overwrite_another_function():
    SUPPORTED_ACTIVATIONS["bilinear"] = torch.relu
    try:
        with pytest.raises(RuntimeError, match="already has an activation"):
            tl_bilinear.register()
    finally:
        SUPPORTED_ACTIVATIONS["bilinear"] = bilinear


def test_plain_transformer_lens_config_computes_the_bilinear_mlp():
    cfg = HookedTransformerConfig(
        act_fn="bilinear", gated_mlp=True, n_layers=1, d_model=16, d_head=4, n_heads=4, n_ctx=8, d_vocab=11
    )
    model = HookedTransformer(cfg)
    x = torch.randn(2, 3, 16)
    mlp = model.blocks[0].mlp
    expected = ((x @ mlp.W_gate) * (x @ mlp.W_in)) @ mlp.W_out
    torch.testing.assert_close(mlp(x), expected)


def test_config_rebuilt_from_dict_still_bilinear():
    cfg = tl_bilinear.get_config("ts-micro")
    rebuilt = HookedTransformerConfig.from_dict(dict(cfg.to_dict()))
    model = HookedTransformer(rebuilt)
    _, cache = model.run_with_cache(torch.tensor([[1, 2, 3]]))
    pre, lin = cache["blocks.0.mlp.hook_pre"], cache["blocks.0.mlp.hook_pre_linear"]
    # a SiLU fallback (TransformerLens 4's bridge) would fail here
    torch.testing.assert_close(cache["blocks.0.mlp.hook_post"], pre * lin)


def test_bilinear_config_defaults_are_the_papers_architecture():
    cfg = tl_bilinear.bilinear_config(d_model=64, n_heads=4)
    assert cfg.act_fn == "bilinear" and cfg.gated_mlp
    assert cfg.d_mlp == 256 and cfg.d_head == 16
    assert cfg.normalization_type == "RMSPre"
    assert cfg.positional_embedding_type == "rotary" and cfg.rotary_adjacent_pairs
    assert not cfg.tie_word_embeddings


@pytest.mark.parametrize(
    "name, fields",
    [
        ("ts-medium", dict(n_layers=6, d_model=512, d_mlp=2048, n_heads=8, n_ctx=256, d_vocab=4096)),
        ("fw-small", dict(n_layers=12, d_model=768, d_mlp=3072, n_heads=12, n_ctx=512, d_vocab=32000)),
        ("fw-medium", dict(n_layers=16, d_model=1024, d_mlp=4096, n_heads=16, n_ctx=512, d_vocab=32000)),
    ],
)
def test_paper_presets_match_appendix_g(name, fields):
    cfg = tl_bilinear.get_config(name)
    assert {k: getattr(cfg, k) for k in fields} == fields
    assert cfg.model_name == name
    assert "Appendix G" in tl_bilinear.get_preset(name).source


def test_cpu_presets_are_small_and_documented():
    for name in ("ts-micro", "ts-tiny"):
        cfg = tl_bilinear.get_config(name)
        assert 1 <= cfg.n_layers <= 4 and 64 <= cfg.d_model <= 256
        assert tl_bilinear.get_preset(name).source


def test_get_config_overrides():
    cfg = tl_bilinear.get_config("ts-micro", n_layers=3, d_vocab=100)
    assert (cfg.n_layers, cfg.d_vocab, cfg.d_model) == (3, 100, 64)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(KeyError) as err:
        tl_bilinear.get_config("ts-huge")
    assert "ts-huge" in str(err.value) and "ts-medium" in str(err.value) and "ts-micro" in str(err.value)


def test_register_preset():
    tl_bilinear.register_preset("test-preset", source="test", n_layers=1, d_model=32, n_heads=2)
    assert "test-preset" in tl_bilinear.list_presets()
    assert tl_bilinear.get_config("test-preset").d_model == 32
    with pytest.raises(ValueError, match="already exists"):
        tl_bilinear.register_preset("test-preset", d_model=64)
    with pytest.raises(ValueError, match="not divisible"):
        tl_bilinear.register_preset("bad-preset", d_model=30, n_heads=4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(d_model=100, n_heads=8), "d_model=100 is not divisible by n_heads=8"),
        (dict(n_layers=0), "n_layers must be a positive integer"),
        (dict(d_model=12, n_heads=4), "even d_head"),
    ],
)
def test_invalid_configs(overrides, message):
    with pytest.raises(ValueError, match=message):
        tl_bilinear.bilinear_config(**overrides)


def test_unknown_field():
    with pytest.raises(ValueError, match="d_modle.*did you mean d_model"):
        tl_bilinear.bilinear_config(d_modle=64)


def test_make_model_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = tl_bilinear.make_model("ts-micro", seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    b = tl_bilinear.make_model("ts-micro", seed=7)
    c = tl_bilinear.make_model("ts-micro", seed=8)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.W_E, c.W_E)


def test_make_model_biases_are_zero_and_frozen():
    model = tl_bilinear.make_model("ts-micro")
    biases = [(n, p) for n, p in model.named_parameters() if n.rsplit(".", 1)[-1].startswith("b_")]
    assert biases
    for name, param in biases:
        assert not param.requires_grad and not param.any(), name
    assert all(p.requires_grad for n, p in model.named_parameters() if ".W_" in n or n.startswith("W_"))


def test_make_model_rejects_overrides_with_a_config_object():
    with pytest.raises(TypeError, match="preset name"):
        tl_bilinear.make_model(tl_bilinear.get_config("ts-micro"), n_layers=2)
