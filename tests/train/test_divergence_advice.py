"""A diverged run's message matches what is on disk: advice a user can follow."""

import pytest

from tl_bilinear.train import Trainer, TrainingDiverged


def diverge(trainer, from_step):
    trainer.model.add_hook(
        "blocks.0.hook_resid_post", lambda resid, hook: resid * float("nan") if trainer.step >= from_step else resid
    )


def test_nothing_saved_yet_says_so_and_suggests_a_new_run(tiny):
    trainer = Trainer(tiny(save_every=3))
    diverge(trainer, 1)
    with pytest.raises(TrainingDiverged) as error:
        trainer.run()
    message = str(error.value)
    assert "No checkpoint was written yet" in message and "--overwrite" in message and "lower --lr" in message
    assert "resume" not in message.lower()  # nothing to resume (and --resume refuses a changed --lr)


def test_a_saved_checkpoint_is_named_and_resume_is_not_offered(tiny):
    trainer = Trainer(tiny(save_every=3))
    diverge(trainer, 4)
    with pytest.raises(TrainingDiverged, match=r"nan at step 5.*step 3") as error:
        trainer.run()
    assert "--resume would repeat the same steps" in str(error.value) and "new --out" in str(error.value)
