"""TransformerLens invariants hold for bilinear models."""

import torch

import tl_bilinear

HOOKS = ["mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post", "hook_mlp_out", "ln2.hook_normalized"]


def _model():
    return tl_bilinear.make_model("ts-micro", n_layers=2, d_vocab=101, seed=3)


def _tokens():
    return torch.randint(0, 101, (3, 24), generator=torch.Generator().manual_seed(0))


def test_hook_names_and_bilinear_product():
    model = _model()
    _, cache = model.run_with_cache(_tokens())
    for layer in range(2):
        for hook in HOOKS:
            assert f"blocks.{layer}.{hook}" in cache, hook
        pre, lin = cache[f"blocks.{layer}.mlp.hook_pre"], cache[f"blocks.{layer}.mlp.hook_pre_linear"]
        torch.testing.assert_close(cache[f"blocks.{layer}.mlp.hook_post"], pre * lin)


def test_process_weights_keeps_log_probs():
    model = _model()
    tokens = _tokens()
    before = model(tokens).log_softmax(-1)
    model.process_weights_()
    after = model(tokens).log_softmax(-1)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


def test_ablating_the_mlp_changes_the_loss():
    model = _model()
    with torch.no_grad():
        model.W_U.mul_(20)  # make the random model's loss depend visibly on its MLPs
    tokens = _tokens()
    clean = model(tokens, return_type="loss")
    ablated = model.run_with_hooks(
        tokens, return_type="loss", fwd_hooks=[("blocks.1.hook_mlp_out", lambda act, hook: torch.zeros_like(act))]
    )
    assert abs(clean.item() - ablated.item()) > 1e-3


def test_state_dict_round_trip():
    a, b = _model(), tl_bilinear.make_model("ts-micro", n_layers=2, d_vocab=101, seed=99)
    tokens = _tokens()
    assert not torch.allclose(a(tokens), b(tokens))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(tokens), b(tokens), rtol=0, atol=0)


def test_biases_stay_zero_after_optimizer_steps():
    model = _model()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        loss = model(_tokens(), return_type="loss")
        loss.backward()
        opt.step()
        opt.zero_grad()
    for name, param in model.named_parameters():
        if name.rsplit(".", 1)[-1].startswith("b_"):
            assert not param.any(), name
