"""anneal_to_bilinear: SwiGLU -> Swish_β -> bilinear with the trainer, exactly at β = 0."""

import json
import signal

import pytest
import torch
import torch.nn.functional as F

import tl_bilinear
from tl_bilinear.convert import AnnealSchedule, SwishBeta, swish0_to_bilinear
from tl_bilinear.convert.anneal import AnnealTrainer
from tl_bilinear.convert.finetune import train_config_for
from tl_bilinear.convert.swish import beta_at, install_swish_gates
from tl_bilinear.train import ResumeMismatch, lm_loss


def blocks(model, n=4, seed=0):
    return torch.randint(0, model.cfg.d_vocab, (n, model.cfg.n_ctx), generator=torch.Generator().manual_seed(seed))


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_swish_gate_at_one_is_silu_and_at_zero_is_half(swiglu_model):
    x = torch.linspace(-6, 6, 101)
    assert torch.equal(SwishBeta(1.0)(x), x * torch.sigmoid(x))
    assert torch.allclose(SwishBeta(1.0)(x), F.silu(x), atol=1e-6)
    assert torch.equal(SwishBeta(0.0)(x), x / 2)
    toks = blocks(swiglu_model)
    before = swiglu_model(toks)
    copy = swish0_to_bilinear(swiglu_model)  # a fresh model: swiglu_model is not modified
    assert copy.cfg.act_fn == "bilinear" and swiglu_model.cfg.act_fn == "silu"
    assert torch.equal(swiglu_model(toks), before)


def test_beta_schedule():
    linear = [beta_at(s, 10, 1.0, 0.5) for s in range(10)]
    assert linear == pytest.approx([0.8, 0.6, 0.4, 0.2, 0.0, 0, 0, 0, 0, 0])
    assert beta_at(9, 10, 1.0, 1.0) == 0.0  # anneal_frac=1: the last step trains at β = 0
    cosine = [beta_at(s, 10, 1.702, 0.5, "cosine") for s in range(10)]
    assert cosine[0] < 1.702 and cosine[4] == 0.0 and all(a > b for a, b in zip(cosine[:4], cosine[1:5]))
    assert AnnealSchedule(1.0, 0.3).beta(0, 100) == pytest.approx(1 - 1 / 30)


def test_annealed_model_at_beta_zero_equals_its_bilinear_conversion(swiglu_model, anneal_config):
    """The quality bar: the converted bilinear model's loss equals the β = 0 model's to 1e-5."""
    fields = anneal_config(total_tokens=6 * 4 * 32)
    cfg = train_config_for(swiglu_model.cfg, **fields)
    trainer = AnnealTrainer(cfg, swiglu_model, AnnealSchedule(1.0, anneal_frac=0.5), tokenizer=swiglu_model.tokenizer)
    result = trainer.run()
    betas = [m["beta"] for m in metrics(trainer.out_dir)]
    assert betas == pytest.approx([2 / 3, 1 / 3, 0, 0, 0, 0])
    annealed = trainer.model
    assert all(isinstance(b.mlp.act_fn, SwishBeta) and b.mlp.act_fn.beta == 0 for b in annealed.blocks)
    toks = blocks(annealed)
    annealed.eval()
    with torch.no_grad():
        loss_annealed = lm_loss(annealed(toks), toks).item()
        hook_annealed = annealed.run_with_cache(toks, names_filter="blocks.0.mlp.hook_post")[1]
    bilinear = trainer.finish(result)
    with torch.no_grad():
        loss_bilinear = lm_loss(bilinear(toks), toks).item()
        hook_bilinear = bilinear.run_with_cache(toks, names_filter="blocks.0.mlp.hook_post")[1]
    assert abs(loss_bilinear - loss_annealed) < 1e-5
    assert torch.allclose(hook_bilinear["blocks.0.mlp.hook_post"], hook_annealed["blocks.0.mlp.hook_post"], atol=1e-6)
    # the run's checkpoint is now the bilinear model; load/train_config agree
    loaded = tl_bilinear.load(trainer.out_dir)
    assert loaded.cfg.act_fn == "bilinear" and loaded.tokenizer is not None
    assert abs(lm_loss(loaded(toks), toks).item() - loss_annealed) < 1e-5
    assert result.val_loss == pytest.approx(trainer.validation_loss(), abs=1e-5)  # last eval was at β = 0


def test_anneal_to_bilinear_resumes_exactly(swiglu_model, anneal_config, tmp_path):
    """Ctrl-C mid-anneal, resume: the same losses and βs as an uninterrupted run, then bilinear."""
    fields = {**anneal_config(total_tokens=9 * 4 * 32, save_every=3), "anneal_frac": 0.6}
    fields.pop("out_dir")
    straight = tl_bilinear.anneal_to_bilinear(swiglu_model, tmp_path / "straight", **fields)
    assert straight.model.cfg.act_fn == "bilinear" and straight.train.step == 9

    stopped = tmp_path / "stopped"
    train_fields = {k: v for k, v in fields.items() if k != "anneal_frac"}
    cfg = train_config_for(swiglu_model.cfg, out_dir=str(stopped), **train_fields)
    trainer = AnnealTrainer(cfg, swiglu_model, AnnealSchedule(1.0, anneal_frac=0.6), tokenizer=swiglu_model.tokenizer)
    fired = []

    def interrupt(resid, hook):
        if trainer.step == 4 and trainer.model.training and not fired:
            fired.append(True)
            signal.raise_signal(signal.SIGINT)
        return resid

    trainer.model.add_hook("blocks.0.hook_resid_post", interrupt)
    assert trainer.run().interrupted
    with pytest.raises(ResumeMismatch, match="it was annealed with"):
        tl_bilinear.anneal_to_bilinear(swiglu_model, stopped, resume=True, **{**fields, "anneal_frac": 0.5})
    resumed = tl_bilinear.anneal_to_bilinear(swiglu_model, stopped, resume=True, **fields)
    expected = {m["step"]: (m["loss"], m["beta"]) for m in metrics(tmp_path / "straight")}
    got = {m["step"]: (m["loss"], m["beta"]) for m in metrics(stopped)}
    assert sorted(got) == list(range(1, 10))
    assert all(abs(got[s][0] - expected[s][0]) <= 1e-6 and got[s][1] == expected[s][1] for s in expected)
    toks = blocks(swiglu_model)
    assert torch.allclose(resumed.model(toks), straight.model(toks), atol=1e-5)
    again = tl_bilinear.anneal_to_bilinear(swiglu_model, stopped, resume=True, **fields)
    assert again.train is None and torch.equal(again.model(toks), tl_bilinear.load(stopped)(toks))


def test_train_config_for_rebuilds_the_model_config(swiglu_model):
    cfg = train_config_for(swiglu_model.cfg, out_dir="x")
    rebuilt = cfg.model_config()
    assert rebuilt.act_fn == "silu" and rebuilt.d_model == swiglu_model.cfg.d_model
    assert rebuilt.to_dict()["d_vocab"] == swiglu_model.cfg.d_vocab


def test_models_that_cannot_be_annealed(tiny_model, swiglu_model, tmp_path):
    with pytest.raises(ValueError, match="already bilinear"):
        tl_bilinear.anneal_to_bilinear(tiny_model, tmp_path / "a", total_tokens=100)
    ungated = tl_bilinear.make_model("ts-micro", act_fn="gelu", gated_mlp=False, d_model=32)
    with pytest.raises(ValueError, match="annealing needs a gated MLP.*gated_mlp=False, act_fn='gelu'"):
        tl_bilinear.anneal_to_bilinear(ungated, tmp_path / "b", total_tokens=100)
    reglu = tl_bilinear.make_model("ts-micro", act_fn="relu", d_model=32)
    with pytest.raises(ValueError, match="cannot anneal act_fn='relu'"):
        install_swish_gates(reglu, 1.0)
    for kw, message in [
        (dict(anneal_frac=0), r"anneal_frac must be in \(0, 1\], got 0"),
        (dict(anneal_frac=1.5), r"anneal_frac must be in \(0, 1\], got 1.5"),
        (dict(beta_schedule="step"), "schedule must be one of"),
        (dict(start_beta=-1), "start_beta must be positive"),
    ]:
        with pytest.raises(ValueError, match=message):
            tl_bilinear.anneal_to_bilinear(swiglu_model, tmp_path / "c", total_tokens=100, **kw)


def test_finetune_starts_from_the_source_weights(swiglu_model, anneal_config):
    """At a negligible learning rate, continued training leaves the source model's outputs."""
    fields = anneal_config(total_tokens=3 * 4 * 32, lr=1e-12)
    result = tl_bilinear.convert.finetune(swiglu_model, fields.pop("out_dir"), **fields)
    tuned = tl_bilinear.load(result.out_dir)
    toks = blocks(swiglu_model)
    assert tuned.cfg.act_fn == "silu" and result.step == 3
    assert torch.allclose(tuned(toks), swiglu_model(toks), atol=1e-5)
