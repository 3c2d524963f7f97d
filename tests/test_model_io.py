"""Checkpoint directories: save/load round trip, atomic replacement, clear errors."""

import json

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

import tl_bilinear
from tl_bilinear import model as model_io

TEXT = ["once upon a time there was a happy cat", "the dog was not sad at all", "she was never scared"] * 20


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A real BPE tokenizer saved as a Hugging Face directory, vocab 64."""
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(
        TEXT, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<unk>"], show_progress=False)
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(str(path))
    return PreTrainedTokenizerFast.from_pretrained(str(path))


@pytest.fixture()
def model(tokenizer):
    m = tl_bilinear.make_model("ts-micro", seed=3, d_vocab=len(tokenizer), n_ctx=16, n_layers=2)
    with torch.no_grad():  # make biases irrelevant but weights distinctive
        m.blocks[0].mlp.W_in.mul_(1.5)
    return m


def test_round_trip_gives_identical_logits_and_tokenizer(tmp_path, model, tokenizer):
    path = tl_bilinear.save(model, tmp_path / "ckpt", tokenizer=tokenizer, note="hello")
    meta = json.loads((path / "config.json").read_text())
    assert meta["preset"] == "ts-micro" and meta["note"] == "hello"
    assert meta["model_config"]["dtype"] == "float32"
    loaded = tl_bilinear.load(path)
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 16))
    torch.testing.assert_close(loaded(tokens), model.eval()(tokens), rtol=0, atol=0)
    assert loaded.cfg.act_fn == "bilinear" and loaded.cfg.n_layers == 2
    assert loaded.tokenizer is not None
    text = "the happy dog"
    assert loaded.tokenizer.encode(text, add_special_tokens=False) == tokenizer.encode(text)
    assert loaded.tokenizer.get_vocab() == tokenizer.get_vocab()
    assert loaded.to_str_tokens(text, prepend_bos=False) == [tokenizer.decode([t]) for t in tokenizer.encode(text)]
    assert all(not p.requires_grad for n, p in loaded.named_parameters() if ".b_" in n or n.startswith("b_"))


def test_no_pickle_only_safetensors_and_json(tmp_path, model, tokenizer):
    path = tl_bilinear.save(model, tmp_path / "ckpt", tokenizer=tokenizer)
    weights = load_file(str(path / "model.safetensors"))
    assert torch.equal(weights["blocks.0.mlp.W_in"], model.blocks[0].mlp.W_in.detach())
    suffixes = {p.suffix for p in path.rglob("*") if p.is_file()}
    assert suffixes <= {".json", ".safetensors"}, suffixes


def test_load_accepts_run_directory(tmp_path, model):
    tl_bilinear.save(model, tmp_path / "run" / "checkpoint")
    loaded = tl_bilinear.load(tmp_path / "run")
    assert loaded.tokenizer is None
    assert torch.equal(loaded.W_U, model.W_U)


def test_failed_write_keeps_previous_checkpoint(tmp_path, model, monkeypatch):
    path = tl_bilinear.save(model, tmp_path / "ckpt")
    before = tl_bilinear.load(path).W_E.clone()
    real_save_pretrained = model_io.write_model_files

    def write_then_fail(directory, *args, **kwargs):
        real_save_pretrained(directory, *args, **kwargs)  # partial output is on disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_io, "write_model_files", write_then_fail)
    with torch.no_grad():
        model.W_E.add_(1.0)
    with pytest.raises(OSError, match="No space"):
        model_io.save(model, path)
    assert torch.equal(tl_bilinear.load(path).W_E, before)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temp dirs left behind


def test_kill_between_renames_is_read_in_place_and_recovered_by_the_next_save(tmp_path, model):
    path = tl_bilinear.save(model, tmp_path / "ckpt")
    (tmp_path / "ckpt").rename(tmp_path / ".ckpt.old")  # as if killed after the first rename
    loaded = tl_bilinear.load(tmp_path / "ckpt")
    assert torch.equal(loaded.W_E, model.W_E)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ckpt.old"]  # a reader changes nothing
    with torch.no_grad():
        model.W_E.add_(1.0)
    tl_bilinear.save(model, path)  # the writer puts the old one back, then replaces it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert torch.equal(tl_bilinear.load(path).W_E, model.W_E)


def test_missing_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tl_bilinear.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        tl_bilinear.load(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="not a tl-bilinear-checkpoint"):
        tl_bilinear.load(tmp_path / "bad")


def test_config_json_round_trip():
    cfg = tl_bilinear.get_config("ts-small", dtype=torch.float64)
    data = model_io.config_to_json(cfg)
    json.dumps(data)
    back = model_io.config_from_json(data)
    assert back.dtype == torch.float64 and back.d_mlp == cfg.d_mlp and back.act_fn == "bilinear"
    with pytest.raises(ValueError, match="unknown dtype"):
        model_io.config_from_json({**data, "dtype": "float7"})
