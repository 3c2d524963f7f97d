"""finetune, anneal_to_bilinear and ``tl-bilinear anneal`` hold their run's writer lock for the whole run."""

import json
import os
from pathlib import Path

import pytest

import tl_bilinear
from tests.helpers.cli import one_clear_line, run_main
from tests.helpers.runs import TOKENS_PER_STEP, lock_held_elsewhere
from tl_bilinear.convert.finetune import train_config_for
from tl_bilinear.rundir import LOCK_FILE, RunLocked
from tl_bilinear.train.setup import default_streams


def test_a_second_writer_is_refused_naming_the_holder(swiglu_model, swiglu_run, anneal_config, tmp_path, capsys):
    fields = anneal_config(total_tokens=2 * TOKENS_PER_STEP)
    fields.pop("out_dir")
    out = tmp_path / "busy"
    with lock_held_elsewhere(out) as holder:
        for write in (tl_bilinear.convert.finetune, tl_bilinear.anneal_to_bilinear):
            with pytest.raises(RunLocked) as refused:
                write(swiglu_model, out, **fields)
            assert str(out) in str(refused.value) and f"pid {holder} (holder" in str(refused.value)
        status, err = run_main("anneal", swiglu_run, "--out", out, "--tokens", 256, "--no-progress", capsys=capsys)
        one_clear_line(status, err, str(out), f"pid {holder} (holder", "another --out")
        assert os.listdir(out) == [LOCK_FILE]  # nothing was written


@pytest.mark.parametrize("write", ["finetune", "anneal_to_bilinear"])
def test_the_lock_is_held_from_the_first_stream_to_the_last_save(write, swiglu_model, anneal_config):
    fields = anneal_config(total_tokens=2 * TOKENS_PER_STEP, eval_every=1, save_every=1)
    out = fields.pop("out_dir")
    default = default_streams(train_config_for(swiglu_model.cfg, out_dir=out, **fields), swiglu_model.tokenizer)
    holders = []

    def streams(split, rank, world_size):  # the train stream at the start, the validation one at every eval
        holders.append((split, json.loads(Path(out, LOCK_FILE).read_text())["pid"]))
        return default(split, rank, world_size)

    getattr(tl_bilinear.convert, write)(swiglu_model, out, stream_factory=streams, **fields)
    assert {split for split, _ in holders} == {"train", "validation"}
    assert {pid for _, pid in holders} == {os.getpid()}
    assert not Path(out, LOCK_FILE).exists()  # released at the end
