"""Tokenizers: BPE training, directory round trip, TransformerLens use, SentencePiece, vocab check."""

import pytest
import torch

import tl_bilinear
from tl_bilinear.data import END_OF_TEXT, check_vocab, iter_documents, load_tokenizer, save_tokenizer, train_tokenizer


def test_trained_tokenizer_properties(tok):
    assert len(tok) == 512
    assert tok.eos_token == tok.bos_token == END_OF_TEXT
    ids = tok('Once upon a time, Lily said "hello"!', add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == 'once upon a time, lily said "hello"!'  # lowercased, quotes kept
    # byte-level: any text encodes and decodes, with no unknown token
    text = "ünïcödé ✓ 日本 \t\n"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_round_trip_from_directory(tok, tok_dir, tmp_path):
    again = load_tokenizer(tok_dir)
    text = "once upon a time there was a little dog named max. he was not happy."
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    copy = save_tokenizer(again, tmp_path / "copy")
    assert (tmp_path / "copy" / "tokenizer.json").exists()
    assert copy(text)["input_ids"] == tok(text)["input_ids"]


def test_transformer_lens_model_uses_it(tok):
    cfg = tl_bilinear.get_config("ts-micro", d_vocab=len(tok))
    check_vocab(tok, cfg)
    model = tl_bilinear.make_model(cfg)
    model.set_tokenizer(tok)
    tokens = model.to_tokens("once upon a time")
    assert tokens[0, 0].item() == tok.eos_token_id  # TL prepends <|endoftext|> as BOS
    assert model.to_str_tokens("once upon a time")[0] == END_OF_TEXT
    assert "".join(model.to_str_tokens("once upon a time")[1:]) == "once upon a time"
    logits = model(tokens)
    assert logits.shape == (1, tokens.shape[1], len(tok))

    from transformer_lens import HookedTransformer

    built = HookedTransformer(cfg, tokenizer=tok)
    assert torch.equal(built.to_tokens("once upon a time"), tokens)


def test_check_vocab_mismatch(tok):
    cfg = tl_bilinear.get_config("ts-micro")  # d_vocab 4096
    with pytest.raises(ValueError, match=r"vocabulary size 512 != model d_vocab 4096.*d_vocab=512"):
        check_vocab(tok, cfg)


def test_vocab_size_too_small():
    with pytest.raises(ValueError, match="at least 257"):
        train_tokenizer(["a b c"], vocab_size=100)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_tokenizer(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="not a tokenizer directory"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.txt").write_text("a")
    with pytest.raises(ValueError, match="unsupported tokenizer file"):
        load_tokenizer(tmp_path / "vocab.txt")


def test_sentencepiece_model_file(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(iter_documents("builtin", limit=200)))
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp_path / "sp"),
        vocab_size=300,
        model_type="bpe",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    tok = load_tokenizer(tmp_path / "sp.model", out_dir=tmp_path / "sp_hf")
    assert len(tok) == 300
    assert (tmp_path / "sp_hf" / "tokenizer.json").exists()
    text = "once upon a time there was a girl"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text

    model = tl_bilinear.make_model(tl_bilinear.get_config("ts-micro", d_vocab=len(tok)))
    model.set_tokenizer(tok)
    assert model.to_str_tokens(text)[0] == "<s>"
    assert model(model.to_tokens(text)).shape[-1] == 300
