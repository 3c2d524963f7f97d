"""``tl-bilinear sae``: train a paper-style TopK SAE, and analyse output features through the weights.

Examples::

    tl-bilinear sae train runs/demo --layer 2 --site mlp_in --out saes/mlp_in
    tl-bilinear sae analyze runs/demo --layer 2 --in-sae saes/mlp_in --out-sae saes/mlp_out --out sae.html
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from tl_bilinear.cli.args import learning_rate, parse_count

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``sae`` subcommand (``sae train``, ``sae analyze``) to a ``tl-bilinear`` parser.

    Args:
        subparsers: the result of ``parser.add_subparsers()``.

    Returns:
        The subcommand's parser.
    """
    p = subparsers.add_parser("sae", help="train TopK SAEs and analyse SAE features through the weights")
    commands = p.add_subparsers(dest="sae_command", required=True, metavar="SAE_COMMAND")
    train = commands.add_parser("train", help="train a TopK SAE at a site of a layer")
    train.add_argument("checkpoint", help="checkpoint (or training run) directory")
    train.add_argument("--layer", type=int, required=True, help="layer index")
    train.add_argument("--site", default="mlp_in", help="mlp_in, mlp_out or any hook name (default mlp_in)")
    train.add_argument("--out", type=Path, required=True, help="SAE directory to write")
    train.add_argument("--tokens", type=parse_count, default=4_000_000, help="activations to train on (default 4M)")
    train.add_argument("--k", type=parse_count, default=30, help="features kept per token (default 30)")
    train.add_argument("--expansion", type=parse_count, default=4, help="d_sae / d_model (default 4)")
    train.add_argument(
        "--recipe",
        choices=("paper", "small"),
        default="paper",
        help="lr and batch size: paper (1e-4, 4096; default) or small (4e-3, 1024: far better for a few M tokens)",
    )
    train.add_argument("--lr", type=learning_rate, default=None, help="Adam learning rate, cosine decay (the recipe's)")
    train.add_argument("--batch-size", type=parse_count, default=None, help="activations per step (the recipe's)")
    train.add_argument("--buffer", type=parse_count, default=65536, help="shuffling buffer size (default 65536)")
    train.add_argument("--eval-every", type=int, default=200, help="steps between evaluations (default 200)")
    train.add_argument("--save-every", type=int, default=0, help="steps between checkpoints (default: at the end)")
    train.add_argument("--data", default="builtin", help="text source (default: the built-in stories)")
    train.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    train.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    train.set_defaults(func=run_train)
    analyze = commands.add_parser("analyze", help="HTML report: interactions, low-rank correlation, token views")
    analyze.add_argument("checkpoint", help="checkpoint (or training run) directory")
    analyze.add_argument("--layer", type=int, required=True, help="layer index")
    analyze.add_argument("--in-sae", type=Path, required=True, help="SAE at the MLP input (any supported format)")
    analyze.add_argument("--out-sae", type=Path, required=True, help="SAE at the MLP output (any supported format)")
    analyze.add_argument("--out", type=Path, default=Path("sae.html"), help="output HTML (default sae.html)")
    analyze.add_argument("--max-k", type=parse_count, default=64, help="largest rank of the approximation (default 64)")
    analyze.add_argument("--batches", type=parse_count, default=8, help="validation batches of 8 blocks (default 8)")
    analyze.add_argument("--features", type=parse_count, default=4, help="output features shown (default 4)")
    analyze.add_argument("--cache", type=Path, default=None, help="directory caching the eigenspectra (resumable)")
    analyze.set_defaults(func=run_analyze)
    return p


def run_train(args: argparse.Namespace) -> int:
    """Run ``sae train``; prints the final evaluation as JSON."""
    import tl_bilinear
    from tl_bilinear.sae import train_sae

    model = tl_bilinear.load(args.checkpoint)
    cfg = train_config(args)
    result = train_sae(model, cfg, args.out, resume=args.resume)
    print(json.dumps({"out": str(args.out), "dead_fraction": result.dead_fraction, **result.metrics.to_dict()}))
    return 0


def train_config(args: argparse.Namespace):
    """The ``SAETrainConfig`` of ``sae train``'s flags: the recipe's lr and batch size unless given."""
    from tl_bilinear.sae import SAETrainConfig

    return SAETrainConfig.from_recipe(
        args.recipe,
        args.layer,
        lr=args.lr,
        batch_size=args.batch_size,
        site=args.site,
        total_tokens=args.tokens,
        k=args.k,
        expansion=args.expansion,
        buffer_tokens=args.buffer,
        eval_every=args.eval_every,
        save_every=args.save_every,
        data=args.data,
        seed=args.seed,
    )


def _feature_view(model, layer, out_sae, in_sae, spectra, row, tokens, k):
    """The page's view of output feature ``spectra.features[row]``: heatmap of its strongest pairs, a token view."""
    from tl_bilinear.analysis import feature_interactions, mlp_input, mlp_input_hook_names
    from tl_bilinear.viz.feature_report import FeatureView

    feature = int(spectra.features[row])
    inter = feature_interactions(model, layer, out_sae, feature, in_sae, top=8)
    chosen = list(dict.fromkeys(inter.top_pairs[0].flatten().tolist()))[:8]
    matrix = inter.matrices[0][chosen][:, chosen]
    eig = spectra.eigendecomposition[row]
    hook = f"blocks.{layer}.hook_mlp_out"
    names = {hook, *mlp_input_hook_names(model, layer)}
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names, stop_at_layer=layer + 1)
        acts = out_sae.encode(cache[hook])[..., feature]  # [batch, pos]
        best = int(acts.amax(1).argmax())
        actual = (cache[hook][best].float() - out_sae.b_dec) @ out_sae.W_enc[:, feature]
        x = mlp_input(model, layer, cache)[best].float()
        approx = eig.reconstruct(x, k)[:, 0] - eig.directions[0].float() @ out_sae.b_dec
    pairs = ", ".join(f"({i},{j}) {v:+.3g}" for (i, j), v in zip(inter.top_pairs[0].tolist()[:3], inter.top_values[0]))
    caption = (
        f"top eigenvalues {[round(v, 3) for v in eig.eigenvalues[0, :4].tolist()]}; strongest input pairs {pairs} "
        f"(typical cross-interaction {float(inter.scale[0]):.3g})"
    )
    return FeatureView(
        feature=feature,
        caption=caption,
        matrix=matrix,
        labels=[f"in {i}" for i in chosen],
        tokens=model.to_str_tokens(tokens[best]),
        actual=actual,
        approximation=approx,
        k=k,
    )


def run_analyze(args: argparse.Namespace) -> int:
    """Run ``sae analyze``; writes the HTML report and prints a JSON summary."""
    import tl_bilinear
    from tl_bilinear.analysis import feature_spectra, low_rank_correlation
    from tl_bilinear.data import TokenBlockStream
    from tl_bilinear.sae import open_sae
    from tl_bilinear.viz.feature_report import feature_report

    model = tl_bilinear.load(args.checkpoint)
    in_sae, out_sae = open_sae(args.in_sae), open_sae(args.out_sae)
    if args.max_k > model.cfg.d_model:
        raise ValueError(f"--max-k {args.max_k} is above d_model={model.cfg.d_model}")
    stream = TokenBlockStream("builtin", model.tokenizer, model.cfg.n_ctx, split="validation")
    batches = [b for _, b in zip(range(args.batches), stream.batches(8))]
    spectra = feature_spectra(model, args.layer, out_sae, k=args.max_k, cache_dir=args.cache, progress=True)
    lowrank = low_rank_correlation(
        model, args.layer, out_sae, batches, max_k=args.max_k, eigendecomposition=spectra.eigendecomposition
    )
    if not len(lowrank.features):
        raise ValueError(f"no output feature is active on more than 10 of the {args.batches} batches' tokens")
    included = set(lowrank.features.tolist())
    top2 = spectra.eigendecomposition.eigenvalues[:, :2].square().sum(1) / spectra.frobenius_sq.clamp_min(1e-30)
    rows = [r for r in top2.argsort(descending=True).tolist() if int(spectra.features[r]) in included][: args.features]
    views = [_feature_view(model, args.layer, out_sae, in_sae, spectra, r, batches[0], 2) for r in rows]
    curve = lowrank.mean_curve()
    summary = {
        "layer": args.layer,
        "features_included": len(lowrank.features),
        "features_excluded": len(lowrank.excluded),
        "mean_correlation_k1": float(curve[0]),
        "mean_correlation_k2": float(curve[1]) if len(curve) > 1 else None,
        "fraction_above_0.75_k2": lowrank.fraction_above(2) if len(curve) > 1 else None,
        f"mean_correlation_k{len(curve)}": float(curve[-1]),
    }
    doc = feature_report(
        f"SAE features of layer {args.layer}", list(summary.items()), curve, lowrank.at(min(2, len(curve))), views
    )
    doc.save(args.out)
    print(json.dumps({"out": str(args.out), **summary}))
    return 0
