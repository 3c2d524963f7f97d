"""A tiny trained tokenizer and a float64 bilinear model that uses it (no network)."""

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

import tl_bilinear

#: Strings that must show literally in every view (they are also whole tokens).
NASTY = [
    "<script>alert(1)</script>",
    "</script>",
    "<s>",
    "<b>",
    "&amp;",
    "\u2028",
    "<img src=x onerror=window.__pwned=1>",
]

CORPUS = [
    "Once upon a time there was a happy dog. The dog was sad when it rained.",
    "The cat felt sad, then happy again. A little girl laughed and the sun came out.",
    "Tom was happy. Sue was sad. They played in the park all day long.",
] * 20


def save_tokenizer(path: Path) -> Path:
    """Train a 300-entry byte-level BPE on CORPUS (plus the NASTY tokens) into ``path``."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    fast.add_tokens(NASTY)
    fast.save_pretrained(path)
    return path


def text_model_with(tokenizer_dir: Path):
    """A 2-layer float64 bilinear model (n_ctx 24) using the tokenizer in ``tokenizer_dir``."""
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    cfg = tl_bilinear.bilinear_config(
        n_layers=2, d_model=32, n_heads=4, n_ctx=24, d_vocab=len(tokenizer), dtype=torch.float64
    )
    model = tl_bilinear.make_model(cfg, seed=0)
    model.set_tokenizer(tokenizer, default_padding_side="right")
    return model
