"""Run ``train`` on a TrainConfig JSON file (a real process for the kill, signal and DDP tests).

    python tests/train/run_config.py CONFIG.json [--resume] [--hang-at-step N]
        [--validation-mark PATH --validation-sleep SECONDS]

``--hang-at-step N`` blocks the training forward of step N + 1 for good (after the
checkpoints up to step N are written), so a test can kill the process at a known step
whatever the machine's speed. ``--validation-mark`` writes PATH when a validation forward
starts and ``--validation-sleep`` makes every validation batch take that long (in short
sleeps), so a test can signal the process during its validation. The hooks leave the
values alone.
"""

import argparse
import json
import time
from pathlib import Path

from tl_bilinear.train import TrainConfig, Trainer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hang-at-step", type=int, default=None)
    parser.add_argument("--validation-mark", type=Path, default=None)
    parser.add_argument("--validation-sleep", type=float, default=0.0)
    args = parser.parse_args()
    with open(args.config) as handle:
        cfg = TrainConfig.from_json(json.load(handle))
    trainer = Trainer(cfg, resume=args.resume)

    def pause(resid, hook):
        if trainer.model.training and trainer.step == args.hang_at_step:
            while True:
                time.sleep(0.1)
        if not trainer.model.training and args.validation_mark is not None:
            args.validation_mark.write_text(str(trainer.step))
            for _ in range(round(args.validation_sleep / 0.05)):
                time.sleep(0.05)
        return resid

    trainer.model.add_hook("blocks.0.hook_resid_post", pause)
    result = trainer.run()
    print(json.dumps({"step": result.step, "stop_reason": result.stop_reason, "val_loss": result.val_loss}))


if __name__ == "__main__":
    main()
