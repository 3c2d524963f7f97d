"""Independent reference implementations the library is tested against."""

import torch


def paper_interaction_matrices(W_gate, W_in, W_out, U):
    """The paper code's four-operand einsum (its W, V, P orientation), then symmetrised."""
    B = torch.einsum("mi,mj,om,no->nij", W_gate.T, W_in.T, W_out.T, U)
    return (B + B.mT) / 2


def bilinear_mlp(x, W_gate, W_in, W_out, b_pre=None, b_pre_linear=None, b_in=None, b_out=None):
    """((x W_gate + b_pre) * (x W_in + b_pre_linear) + b_in) W_out + b_out, written out directly."""
    gate = x @ W_gate + (0 if b_pre is None else b_pre)
    lin = x @ W_in + (0 if b_pre_linear is None else b_pre_linear)
    hidden = gate * lin + (0 if b_in is None else b_in)
    return hidden @ W_out + (0 if b_out is None else b_out)


def relative_error(pred, ref):
    """max |pred - ref| / max |ref|."""
    return ((pred - ref).abs().max() / ref.abs().max()).item()


def random_directions(model, n=6, seed=0):
    """n random output directions of the model's width and dtype."""
    return torch.randn(n, model.cfg.d_model, generator=torch.Generator().manual_seed(seed), dtype=model.cfg.dtype)
