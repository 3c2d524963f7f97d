"""Run ``train`` on a TrainConfig JSON file (a real process for the kill and DDP tests).

    python tests/train/run_config.py CONFIG.json [--resume] [--sleep SECONDS]

``--sleep`` pauses after every training forward (a TransformerLens hook that leaves the
values alone), so a test has time to kill the process mid-run.
"""

import argparse
import json
import time

from tl_bilinear.train import TrainConfig, Trainer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    with open(args.config) as handle:
        cfg = TrainConfig.from_json(json.load(handle))
    trainer = Trainer(cfg, resume=args.resume)
    if args.sleep:

        def pause(resid, hook):
            if trainer.model.training:
                time.sleep(args.sleep)
            return resid

        trainer.model.add_hook("blocks.0.hook_resid_post", pause)
    trainer.run()


if __name__ == "__main__":
    main()
