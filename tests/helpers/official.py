"""An independent plain-torch implementation of the paper's released architecture, and snapshots of it.

Written from the description of ``tdooms/bilinear-decomposition`` (``src/language/transformer.py``,
``src/shared/components.py``): fused qkv whose rows are (q|k|v, head, d_head); rotate-half rotary
embeddings (base 10000) on q and k; causal softmax attention scaled by 1/sqrt(d_head); the attention
branch times 1/sqrt(2 n_layer); MLP ``p(gate(left) * right)`` with ``w`` = [left; right]; weightless
RMSNorm ``x * rsqrt(mean(x^2) + 1e-8)`` before attention, before the MLP and at the end; ``lm_head``.
"""

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

GATES = {None: lambda x: x, "relu": F.relu, "silu": F.silu, "gelu": F.gelu}


def rms(x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-8)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def official_logits(config: dict, state: dict, tokens: torch.Tensor) -> torch.Tensor:
    """Logits [batch, pos, d_vocab] of the official model ``config`` with weights ``state``."""
    n_head, n_layer, d_model = config["n_head"], config["n_layer"], config["d_model"]
    d_head = d_model // n_head
    batch, seq = tokens.shape
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d_head, 2).float() / d_head))
    freqs = torch.outer(torch.arange(seq).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(state["lm_head.weight"].dtype), emb.sin().to(state["lm_head.weight"].dtype)
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    norm = rms if config.get("normalization", True) else (lambda x: x)
    gate = GATES[config.get("gate")]
    x = state["transformer.wte.weight"][tokens]
    for i in range(n_layer):
        pre = f"transformer.h.{i}."
        qkv = norm(x) @ state[pre + "attn.qkv.weight"].T
        q, k, v = qkv.view(batch, seq, 3, n_head, d_head).permute(2, 0, 3, 1, 4)  # 3 x [b, h, s, dh]
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d_head)
        pattern = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        z = (pattern @ v).transpose(1, 2).reshape(batch, seq, d_model)
        x = x + (z @ state[pre + "attn.o.weight"].T) / math.sqrt(2 * n_layer)
        h = norm(x) @ state[pre + "mlp.w.weight"].T + state.get(pre + "mlp.w.bias", 0)
        if config.get("bilinear", True):
            left, right = h.chunk(2, dim=-1)
            h = gate(left) * right
        else:
            h = gate(h)
        x = x + h @ state[pre + "mlp.p.weight"].T + state.get(pre + "mlp.p.bias", 0)
    return norm(x) @ state["lm_head.weight"].T


def random_official(d_vocab, n_layer=2, d_model=32, n_head=4, d_hidden=64, seed=0, **config):
    """A config dict and random weights (with rotary.inv_freq buffers) of the official layout."""
    config = {"n_ctx": 64, **config, **dict(n_head=n_head, n_layer=n_layer, d_model=d_model, d_hidden=d_hidden)}
    config = {**dict(bilinear=True, gate=None, bias=False, normalization=True, tokenizer="ts-4096"), **config}
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen) / math.sqrt(shape[-1])

    w_rows = 2 * d_hidden if config["bilinear"] else d_hidden
    state = {
        "transformer.wte.weight": torch.randn(d_vocab, d_model, generator=gen),
        "lm_head.weight": rand(d_vocab, d_model),
    }
    for i in range(n_layer):
        pre = f"transformer.h.{i}."
        state[pre + "attn.qkv.weight"] = rand(3 * d_model, d_model) * 2
        state[pre + "attn.o.weight"] = rand(d_model, d_model)
        state[pre + "attn.rotary.inv_freq"] = 1.0 / (
            10000 ** (torch.arange(0, d_model // n_head, 2).float() / (d_model // n_head))
        )
        state[pre + "mlp.w.weight"] = rand(w_rows, d_model)
        state[pre + "mlp.p.weight"] = rand(d_model, d_hidden)
        if config["bias"]:
            state[pre + "mlp.w.bias"] = torch.zeros(w_rows) if config["bilinear"] else rand(w_rows)
            state[pre + "mlp.p.bias"] = rand(d_model)
    return config, state


def write_snapshot(directory: Path, config: dict, state: dict, tokenizer_dir=None) -> Path:
    """Lay ``config`` and ``state`` out as on the hub: config.json (a PretrainedConfig's) + model.safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    hub_config = {
        "_name_or_path": "tdooms/test",
        "architectures": ["Transformer"],
        "torch_dtype": "float32",
        "transformers_version": "4.44.0",
        "repo": None,
        **config,
    }
    (directory / "config.json").write_text(json.dumps(hub_config, indent=2))
    save_file(
        {k: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"), metadata={"format": "pt"}
    )
    if tokenizer_dir is not None:
        for path in Path(tokenizer_dir).iterdir():
            (directory / path.name).write_bytes(path.read_bytes())
    return directory
