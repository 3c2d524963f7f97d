"""An injected clock, so tests check time-budget decisions without wall-clock bounds."""


class FakeClock:
    """An injected clock: time moves only when a test says so (``advance``)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def charge(trainer, clock: FakeClock, train_s, val_s: float = 0.0) -> None:
    """Advance ``clock`` by ``train_s(step)`` per training forward and ``val_s`` per validation batch."""

    def hook(resid, hook):
        clock.advance(train_s(trainer.step) if trainer.model.training else val_s)
        return resid

    trainer.model.add_hook("blocks.0.hook_resid_post", hook)
