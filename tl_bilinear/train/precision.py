"""Precision ``"auto"``: measure fp32 against bf16 autocast on this device, then choose.

CPUs of the same machine type differ: with native bf16 (AVX-512 BF16, AMX) a bf16 GEMM
runs ~4x fp32; with AVX2 only, ~60x slower than fp32. So on CPU ``"auto"`` measures, in
two stages, before training:

1. a GEMM of the model's MLP shape (``[rows, d_model] @ [d_model, d_mlp]``) in fp32 and
   bf16 (cheap and bounded even where bf16 is emulated): bf16 less than ``MIN_SPEEDUP``
   times faster means fp32, with no training step run in bf16;
2. otherwise a couple of real forward + backward micro-steps of the model in fp32 and in
   bf16 autocast: bf16 only if the step itself is ``MIN_SPEEDUP`` times faster.

On CUDA, ``"auto"`` is bf16 where ``torch.cuda.is_bf16_supported()``. The choice
(``choose_precision``) is a pure function of the measured rates, tested with both outcomes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformer_lens import HookedTransformer

logger = logging.getLogger(__name__)

#: bf16 is chosen only when it is at least this many times faster than fp32.
MIN_SPEEDUP = 1.2


@dataclass(frozen=True)
class PrecisionRates:
    """One measurement of fp32 against bf16 (higher is faster).

    Attributes:
        what: what was timed (``"GEMM"``, ``"training micro-step"``).
        fp32: the fp32 rate.
        bf16: the bf16 rate.
        unit: the rates' unit (``"GFLOP/s"``, ``"tokens/s"``).
    """

    what: str
    fp32: float
    bf16: float
    unit: str

    @property
    def speedup(self) -> float:
        """bf16's rate over fp32's."""
        return self.bf16 / max(self.fp32, 1e-12)

    def describe(self) -> str:
        """One line: both rates and the ratio."""

        def rate(x: float) -> str:
            return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"

        return (
            f"{self.what} fp32 {rate(self.fp32)} {self.unit}, bf16 {rate(self.bf16)} {self.unit} ({self.speedup:.2g}x)"
        )


def choose_precision(measurements: list[PrecisionRates], min_speedup: float = MIN_SPEEDUP) -> str:
    """bf16 if every measurement says bf16 is at least ``min_speedup`` times faster, else fp32.

    Args:
        measurements: the rates measured so far (the GEMM screen, then the micro-steps).
        min_speedup: the ratio bf16 must reach.

    Returns:
        ``"bf16"`` or ``"fp32"``.
    """
    ok = bool(measurements) and all(m.speedup >= min_speedup for m in measurements)
    return "bf16" if ok else "fp32"


def _best_seconds(fn: Callable[[], object], reps: int, max_seconds: float = float("inf")) -> float:
    """The best time of ``fn`` over ``reps`` calls after a warm-up (fewer once ``max_seconds`` are spent)."""
    fn()  # warm-up: allocation, kernel selection
    best, spent = float("inf"), 0.0
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if spent >= max_seconds:
            break
    return best


def gemm_rates(rows: int, d_in: int, d_out: int, device: torch.device, reps: int = 10) -> PrecisionRates:
    """GFLOP/s of ``[rows, d_in] @ [d_in, d_out]`` in fp32 and in bf16.

    Args:
        rows: the GEMM's rows (tokens).
        d_in: the inner size (``d_model``).
        d_out: the output size (``d_mlp``).
        device: where to run.
        reps: timed calls at most (fewer once 0.1 s are spent, so an emulated bf16 stays cheap).

    Returns:
        The ``"GEMM"`` rates in GFLOP/s.
    """
    gen = torch.Generator(device="cpu").manual_seed(0)
    a, b = torch.randn(rows, d_in, generator=gen).to(device), torch.randn(d_in, d_out, generator=gen).to(device)
    rates = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x, w = a.to(dtype), b.to(dtype)
        rates[name] = 2 * rows * d_in * d_out / _best_seconds(lambda x=x, w=w: x @ w, reps, 0.1) / 1e9
    return PrecisionRates("GEMM", rates["fp32"], rates["bf16"], "GFLOP/s")


def step_rates(micro_step: Callable[[str], None], tokens: int, reps: int = 2) -> PrecisionRates:
    """Tokens/s of a training micro-step in fp32 and in bf16 autocast.

    Args:
        micro_step: runs one forward + backward in the given precision (``"fp32"``/``"bf16"``).
        tokens: the tokens one micro-step processes.
        reps: timed calls per precision (after one warm-up call).

    Returns:
        The ``"training micro-step"`` rates in tokens/s.
    """
    rates = {p: tokens / _best_seconds(lambda p=p: micro_step(p), reps) for p in ("fp32", "bf16")}
    return PrecisionRates("training micro-step", rates["fp32"], rates["bf16"], "tokens/s")


def resolve_precision(
    precision: str,
    device: torch.device,
    *,
    gemm: Callable[[], PrecisionRates],
    steps: Callable[[], PrecisionRates],
    min_speedup: float = MIN_SPEEDUP,
) -> tuple[str, list[PrecisionRates]]:
    """The precision to train in: ``precision`` itself unless it is ``"auto"``.

    Args:
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"``.
        device: the training device (CUDA decides by capability, CPU by measurement).
        gemm: measures the GEMM screen (e.g. ``gemm_rates`` of the model's MLP shape).
        steps: measures real micro-steps (called only if the GEMM screen favours bf16).
        min_speedup: the ratio bf16 must reach.

    Returns:
        ``(precision, measurements)``: ``"fp32"`` or ``"bf16"``, and the rates it was chosen from.
    """
    if precision != "auto":
        return precision, []
    if device.type == "cuda":
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        logger.info("precision auto: %s (CUDA bf16 support: %s)", choice, choice == "bf16")
        return choice, []
    measured = [gemm()]
    if choose_precision(measured, min_speedup) == "bf16":
        measured.append(steps())
    choice = choose_precision(measured, min_speedup)
    logger.info(
        "precision auto: %s (bf16 needs %.1fx; %s)", choice, min_speedup, "; ".join(m.describe() for m in measured)
    )
    return choice, measured


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` for ``precision="bf16"``, else a no-op context.

    Args:
        device: the device the model runs on.
        precision: ``"fp32"`` or ``"bf16"``.

    Returns:
        The autocast context.
    """
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def resolve_for_model(precision: str, model: HookedTransformer, sequences: int) -> tuple[str, list[PrecisionRates]]:
    """``resolve_precision`` measured on ``model``'s own shapes and training micro-steps.

    The probe uses random tokens from its own generator and clears the gradients after, so
    it changes neither the model, the optimizer nor any RNG state (a run is the same with
    or without it).

    Args:
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"``.
        model: the model to train (on its device).
        sequences: ``n_ctx``-token sequences per probe micro-step (e.g. 2).

    Returns:
        ``(precision, measurements)`` as ``resolve_precision``.
    """
    cfg, device = model.cfg, next(model.parameters()).device
    tokens = torch.randint(cfg.d_vocab, (sequences, cfg.n_ctx), generator=torch.Generator().manual_seed(0))
    tokens = tokens.to(device)

    def micro_step(chosen: str) -> None:
        with autocast(device, chosen):
            loss = model(tokens, return_type="loss")
        loss.backward()
        model.zero_grad(set_to_none=True)

    return resolve_precision(
        precision,
        device,
        gemm=lambda: gemm_rates(min(tokens.numel(), 512), cfg.d_model, cfg.d_mlp, device),
        steps=lambda: step_rates(micro_step, tokens.numel()),
    )
