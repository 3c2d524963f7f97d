"""from_official: the paper's released layout -> an exactly equivalent HookedTransformer."""

import itertools
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

import tl_bilinear
from tests.helpers.official import official_logits, random_official, write_snapshot
from tl_bilinear.convert.official import rotate_half_to_adjacent
from tl_bilinear.data import iter_documents, train_tokenizer

SIZES = [
    dict(n_layer=1, d_model=32, n_head=4, d_hidden=64),
    dict(n_layer=3, d_model=48, n_head=3, d_hidden=96, n_ctx=40),
]


@pytest.fixture(scope="module")
def vocab(tokenizer_dir):
    return len(AutoTokenizer.from_pretrained(str(tokenizer_dir)))  # every id, special tokens included


def snapshot(tmp_path, tokenizer_dir, vocab, name="snap", **kw):
    config, state = random_official(vocab, **kw)
    return write_snapshot(tmp_path / name, config, state, tokenizer_dir), config, state


def tokens(vocab, n_ctx=32, seed=1):
    return torch.randint(0, vocab, (3, n_ctx), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("size", SIZES, ids=["1L-d32", "3L-d48"])
def test_logits_match_the_independent_reference(tmp_path, tokenizer_dir, vocab, size):
    directory, config, state = snapshot(tmp_path, tokenizer_dir, vocab, **size)
    model = tl_bilinear.from_official(directory)
    toks = tokens(vocab)
    ref = official_logits(config, state, toks)
    got = model(toks)
    assert model.cfg.act_fn == "bilinear" and model.cfg.rotary_adjacent_pairs
    assert (got - ref).abs().max().item() < 1e-4
    # weight processing keeps every log-prob
    before = got.log_softmax(-1)
    model.process_weights_()
    assert (model(toks).log_softmax(-1) - before).abs().max().item() < 1e-5


@pytest.mark.parametrize("gate", ["silu", "gelu", "relu"])
def test_gated_and_ungated_mlps_with_biases(tmp_path, tokenizer_dir, vocab, gate):
    """A SwiGLU-style gated MLP (no input biases), and an ungated MLP with biases."""
    for bilinear, bias in [(True, False), (False, True)]:
        name = f"{gate}-{bilinear}"
        directory, config, state = snapshot(
            tmp_path, tokenizer_dir, vocab, name, gate=gate, bilinear=bilinear, bias=bias
        )
        model = tl_bilinear.from_official(directory)
        toks = tokens(vocab, seed=2)
        assert (model(toks) - official_logits(config, state, toks)).abs().max().item() < 1e-4, name
        assert model.cfg.act_fn == gate and model.cfg.gated_mlp == bilinear


def test_hub_layout_round_trip_and_checkpoint(tmp_path, tokenizer_dir, vocab):
    """A hub-layout snapshot converts, saves as our checkpoint, and loads back with the same logits."""
    directory, config, state = snapshot(tmp_path, tokenizer_dir, vocab)
    assert {p.name for p in directory.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert any(k.endswith("rotary.inv_freq") for k in load_file(str(directory / "model.safetensors")))
    model = tl_bilinear.from_official(str(directory))
    assert model.tokenizer is not None and len(model.tokenizer) == vocab
    # to_tokens gives exactly the tokenizer's ids (a BOS only where the tokenizer adds one)
    raw = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    assert model.to_tokens("the happy dog")[0].tolist() == raw("the happy dog")["input_ids"]
    tl_bilinear.save(model, tmp_path / "ckpt")
    loaded = tl_bilinear.load(tmp_path / "ckpt")
    toks = tokens(vocab)
    assert torch.equal(loaded(toks), model(toks))
    assert (
        loaded.tokenizer is not None
        and loaded.to_tokens("the happy dog")[0].tolist() == raw("the happy dog")["input_ids"]
    )


def test_rotary_permutation_interleaves_the_halves():
    assert rotate_half_to_adjacent(8).tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


# ---------------------------------------------------------------- bad input


def test_missing_files(tmp_path, tokenizer_dir, vocab):
    with pytest.raises(FileNotFoundError, match="neither a snapshot directory nor a Hugging Face repo id"):
        tl_bilinear.from_official(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        tl_bilinear.from_official(tmp_path / "empty")
    directory, _, _ = snapshot(tmp_path, tokenizer_dir, vocab)
    (directory / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="holds no weights: expected one of"):
        tl_bilinear.from_official(directory)


def test_repo_id_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        FileNotFoundError,
        match="'tdooms/no-such-model' is no directory here, and the Hugging Face hub could not provide it",
    ):
        tl_bilinear.from_official("tdooms/no-such-model")


@pytest.mark.parametrize(
    "name, shape, message",
    [
        (
            "transformer.h.0.attn.qkv.weight",
            None,
            r"tensor transformer.h.0.attn.qkv.weight is missing; expected shape \[96, 32\]",
        ),
        (
            "transformer.h.1.mlp.w.weight",
            (64, 32),
            r"transformer.h.1.mlp.w.weight has shape \[64, 32\].*implies \[128, 32\]",
        ),
        (
            "transformer.h.0.mlp.p.weight",
            (32, 32),
            r"transformer.h.0.mlp.p.weight has shape \[32, 32\].*implies \[32, 64\]",
        ),
        (
            "transformer.h.1.attn.o.weight",
            (32, 16),
            r"transformer.h.1.attn.o.weight has shape \[32, 16\].*implies \[32, 32\]",
        ),
        ("lm_head.weight", (7, 32), r"lm_head.weight has shape \[7, 32\].*implies \[\d+, 32\]"),
        ("transformer.wte.weight", None, r"transformer.wte.weight is missing; expected \[d_vocab, d_model=32\]"),
    ],
)
def test_bad_tensors_are_named_with_the_expected_shape(tmp_path, tokenizer_dir, vocab, name, shape, message):
    config, state = random_official(vocab, n_layer=2)
    if shape is None:
        del state[name]
    else:
        state[name] = torch.zeros(shape)
    directory = write_snapshot(tmp_path / "bad", config, state, tokenizer_dir)
    with pytest.raises(ValueError, match=message):
        tl_bilinear.from_official(directory)


def test_unexpected_tensor_and_bad_config(tmp_path, tokenizer_dir, vocab):
    config, state = random_official(vocab)
    write_snapshot(
        tmp_path / "extra", config, {**state, "transformer.h.0.attn.qkv.bias": torch.zeros(96)}, tokenizer_dir
    )
    with pytest.raises(ValueError, match=r"unexpected tensor\(s\) \['transformer.h.0.attn.qkv.bias'\]"):
        tl_bilinear.from_official(tmp_path / "extra")
    for field, value, message in [
        ("d_hidden", None, r"lacks \['d_hidden'\]"),
        ("n_head", 5, "must split into n_head=5 heads of even width"),
        ("gate", "tanh", "unknown gate 'tanh'"),
    ]:
        directory = write_snapshot(tmp_path / field, config, state, tokenizer_dir)
        data = json.loads((directory / "config.json").read_text())
        data.pop(field) if value is None else data.__setitem__(field, value)
        (directory / "config.json").write_text(json.dumps(data))
        with pytest.raises(ValueError, match=message):
            tl_bilinear.from_official(directory)


def test_unrepresentable_architectures_are_refused(tmp_path, tokenizer_dir, vocab):
    config, state = random_official(vocab, bilinear=False)
    write_snapshot(tmp_path / "linear", config, state, tokenizer_dir)
    with pytest.raises(ValueError, match="bilinear=False and no gate: a purely linear MLP"):
        tl_bilinear.from_official(tmp_path / "linear")
    config, state = random_official(vocab, bias=True)
    state["transformer.h.1.mlp.w.bias"] = torch.ones(128)
    write_snapshot(tmp_path / "bias", config, state, tokenizer_dir)
    with pytest.raises(ValueError, match="transformer.h.1.mlp.w.bias is non-zero: TransformerLens's gated MLP"):
        tl_bilinear.from_official(tmp_path / "bias")


def test_tokenizer_errors(tmp_path, tokenizer_dir, vocab):
    config, state = random_official(vocab, tokenizer="my-own")
    write_snapshot(tmp_path / "notok", config, state)
    with pytest.raises(ValueError, match="has no tokenizer files and its config names tokenizer='my-own'"):
        tl_bilinear.from_official(tmp_path / "notok")
    model = tl_bilinear.from_official(tmp_path / "notok", tokenizer=tokenizer_dir)  # the fix
    assert len(model.tokenizer) == vocab
    config, state = random_official(vocab - 3)
    write_snapshot(tmp_path / "narrow", config, state, tokenizer_dir)
    with pytest.raises(
        ValueError, match=f"the tokenizer has {vocab} tokens but transformer.wte.weight has only {vocab - 3} rows"
    ):
        tl_bilinear.from_official(tmp_path / "narrow")
    config, state = random_official(vocab + 3)  # a padded embedding holds every id: fine
    write_snapshot(tmp_path / "wide", config, state, tokenizer_dir)
    wide = tl_bilinear.from_official(tmp_path / "wide")
    assert wide.cfg.d_vocab == vocab + 3 and len(wide.tokenizer) == vocab
    reloaded = tl_bilinear.load(tl_bilinear.save(wide, tmp_path / "saved"))  # the recorded tokenizer size
    assert reloaded.cfg.d_vocab == vocab + 3 and len(reloaded.tokenizer) == vocab


def test_tokens_match_a_tokenizer_that_adds_no_bos(tmp_path):
    """The official model saw what its tokenizer produced: no BOS is added where the tokenizer adds none."""
    docs = list(itertools.islice(iter_documents("builtin", seed=0), 200))
    train_tokenizer(docs, vocab_size=300, out_dir=tmp_path / "tok", show_progress=False)
    raw = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    config, state = random_official(len(raw))
    model = tl_bilinear.from_official(write_snapshot(tmp_path / "snap", config, state, tmp_path / "tok"))
    ids = raw("the dog was happy")["input_ids"]
    assert ids[0] != raw.bos_token_id and not model.cfg.default_prepend_bos
    assert model.to_tokens("the dog was happy")[0].tolist() == ids
