"""Precision "auto": the choice follows the measured rates (injected here), both ways."""

import json

import pytest
import torch

from tl_bilinear.train import PrecisionRates, Trainer, choose_precision
from tl_bilinear.train import precision as precision_module
from tl_bilinear.train.precision import gemm_rates, resolve_precision, step_rates

NATIVE_BF16 = PrecisionRates("GEMM", fp32=215.0, bf16=817.0, unit="GFLOP/s")  # measured on an AMD EPYC, avx512_bf16
AVX2_ONLY = PrecisionRates("GEMM", fp32=56.0, bf16=0.9, unit="GFLOP/s")  # the AVX2-only EPYC of issue 8


@pytest.mark.parametrize(
    ("measured", "expected"),
    [
        ([NATIVE_BF16], "bf16"),
        ([AVX2_ONLY], "fp32"),
        ([NATIVE_BF16, PrecisionRates("step", 4639.0, 9917.0, "tokens/s")], "bf16"),
        ([NATIVE_BF16, PrecisionRates("step", 9025.0, 6947.0, "tokens/s")], "fp32"),  # fast GEMMs, slower steps
        ([PrecisionRates("GEMM", 100.0, 115.0, "GFLOP/s")], "fp32"),  # 1.15x: not clearly faster
        ([], "fp32"),
    ],
)
def test_choose_precision(measured, expected):
    assert choose_precision(measured) == expected


def test_resolve_runs_no_bf16_step_where_bf16_gemms_are_slow():
    steps_run = []

    def steps():
        steps_run.append(True)
        return PrecisionRates("step", 1.0, 2.0, "tokens/s")

    cpu = torch.device("cpu")
    choice, measured = resolve_precision("auto", cpu, gemm=lambda: AVX2_ONLY, steps=steps)
    assert (choice, measured, steps_run) == ("fp32", [AVX2_ONLY], [])  # a 55 s bf16 step is never tried
    choice, measured = resolve_precision("auto", cpu, gemm=lambda: NATIVE_BF16, steps=steps)
    assert choice == "bf16" and len(measured) == 2 and steps_run == [True]
    assert resolve_precision("fp32", cpu, gemm=lambda: NATIVE_BF16, steps=steps) == ("fp32", [])  # no measuring


def test_the_measurements_are_real_rates():
    gemm = gemm_rates(64, 32, 128, torch.device("cpu"), reps=2)
    assert gemm.what == "GEMM" and gemm.fp32 > 0 and gemm.bf16 > 0
    calls = []
    steps = step_rates(lambda precision: calls.append(precision), tokens=100, reps=2)
    assert calls == ["fp32"] * 3 + ["bf16"] * 3 and steps.fp32 > 0 and steps.bf16 > 0  # a warm-up, then 2 timed


@pytest.mark.parametrize(("gemm", "step", "expected"), [(NATIVE_BF16, (1.0, 2.0), "bf16"), (AVX2_ONLY, None, "fp32")])
def test_trainer_auto_trains_in_the_measured_choice_and_resumes_in_it(
    tiny, tmp_path, monkeypatch, gemm, step, expected
):
    monkeypatch.setattr(precision_module, "gemm_rates", lambda *a, **k: gemm)
    monkeypatch.setattr(precision_module, "step_rates", lambda *a, **k: PrecisionRates("step", *step, "tokens/s"))
    trainer = Trainer(tiny(out_dir=tmp_path / "run", precision="auto", total_tokens=3 * 4 * 32))
    assert trainer.precision == expected and trainer.precision_rates[0] is gemm
    result = trainer.run()
    assert result.precision == expected
    state = json.loads((tmp_path / "run" / "checkpoint" / "trainer_state.json").read_text())
    assert state["precision"] == expected
    flipped = AVX2_ONLY if gemm is NATIVE_BF16 else NATIVE_BF16  # the machine now measures the other way
    monkeypatch.setattr(precision_module, "gemm_rates", lambda *a, **k: flipped)
    resumed = Trainer(tiny(out_dir=tmp_path / "run", precision="auto", total_tokens=3 * 4 * 32), resume=True)
    assert resumed.precision == expected  # a resume continues in the saved choice (exactly)
