"""A run directory belongs to one writer: its lock, and what of a run a directory holds.

Writers (``train``, ``anneal``, ``tokenizer --out``, ``demo``, ``analyze --out`` into a run,
and the library's ``save``, ``finetune``, ``anneal_to_bilinear``, ``to_hf``, SAE and classifier
directories and tokenizers, all through ``writing_into``, whose docstring gives the rule that
keys the lock) hold an exclusive advisory lock (``fcntl.flock``) on ``<run>/.tl-bilinear.lock``
while they write. A whole-directory write over a training run is refused
(``refuse_replacing_run``); one over a directory that holds its own lock carries the lock
file across the swap (``carry_lock``). The kernel releases it when the process ends in any way, so a killed writer leaves
at most a stale file, which the next writer takes over (the pid recorded in it is no
longer running). Readers take no lock and write nothing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LOCK_FILE = ".tl-bilinear.lock"
#: Inside a run directory, the latest complete checkpoint lives here.
RUN_CHECKPOINT = "checkpoint"
#: What a run (training or demo) writes into its directory, besides ``checkpoint/``.
RUN_FILES = ("metrics.jsonl", "tokenizer", "demo_summary.json", "report.html", "spectra.png")
#: The names of a run's parts: a path so named belongs to the run above it (``run_of``).
RUN_PARTS = (RUN_CHECKPOINT, *RUN_FILES)
#: What ``tl_bilinear.save`` writes when the directory itself is the checkpoint.
CHECKPOINT_FILES = ("config.json", "model.safetensors", "trainer_state.json", "trainer_state.safetensors")

_held: dict[str, int] = {}  # locks this process holds: real path -> nesting depth


class RunLocked(RuntimeError):
    """Another process is writing into the run directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _holder(fd: int) -> dict[str, Any]:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _settled_holder(fd: int, wait: float = 2.0) -> dict[str, Any]:
    """The holder's record, once it names a running process (or one on another host).

    A writer records itself just after taking the lock, so a contender that arrives in between reads
    an empty (or the previous, dead writer's) record: it re-reads for up to ``wait`` seconds first.
    """
    deadline = time.monotonic() + wait
    while True:
        holder = _holder(fd)
        pid = holder.get("pid")
        if isinstance(pid, int) and (holder.get("host") != socket.gethostname() or _alive(pid)):
            return holder
        if time.monotonic() > deadline:
            return holder
        time.sleep(0.01)


def _describe(directory: Path, holder: dict[str, Any]) -> str:
    pid, here = holder.get("pid"), holder.get("host") == socket.gethostname()
    if not isinstance(pid, int):
        return f"{str(directory)!r} is being written by another process (starting up); wait, or use another --out"
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("started", 0)))
    who = f"pid {pid} ({holder.get('command', '?')}, since {since}{'' if here else ' on ' + str(holder.get('host'))})"
    if here and not _alive(pid):
        return (
            f"{str(directory)!r} is locked by a process that outlived its writer {who}, e.g. a worker it started; "
            f"find it with `fuser {directory / LOCK_FILE}` and stop it, or use another --out"
        )
    return f"{str(directory)!r} is being written by {who}; wait for it to finish or stop it, or use another --out"


def _acquire(path: Path, command: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _settled_holder(fd)
            os.close(fd)
            raise RunLocked(_describe(path.parent, holder)) from None
        try:  # a releasing holder unlinks the file: a lock on an unlinked file guards nothing
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    stale = _holder(fd)
    if stale.get("pid") is not None:
        logger.warning("%s: taking over the stale lock of pid %s (no longer running)", path.parent, stale.get("pid"))
    record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "started": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    return fd


@contextmanager
def run_lock(directory: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the run directory's writer lock (created with the directory if needed).

    Re-entrant within a process; released (and its file removed) on exit, and by the
    kernel if the process dies. A directory this call created is removed again if it is
    left empty.

    Args:
        directory: the run directory.
        command: what is writing, e.g. ``"tl-bilinear train"`` (shown to a second writer).

    Yields:
        The directory.

    Raises:
        FileExistsError: if ``directory`` is an existing file.
        RunLocked: if another process holds the lock; the message names it (pid, command,
            start time) and what to do.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{str(path)!r} is a file, not a directory; give a new or existing directory")
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    if key in _held:
        _held[key] += 1
        try:
            yield path
        finally:
            _held[key] -= 1
        return
    try:
        fd = _acquire(path / LOCK_FILE, command)
    except RunLocked:
        _remove_if_empty(path, created)
        raise
    _held[key] = 1
    try:
        yield path
    finally:
        del _held[key]
        _release(path / LOCK_FILE, fd)
        _remove_if_empty(path, created)


def _release(lock_file: Path, fd: int) -> None:
    """Remove the lock file if it is still ours, then unlock.

    A directory swapped in where the lock file could not follow it (``carry_lock`` on a
    filesystem without hard links) holds the lock file of a writer that has locked it
    since, if any: that writer keeps its file.
    """
    try:
        here, ours = os.stat(lock_file), os.fstat(fd)
        if (here.st_dev, here.st_ino) == (ours.st_dev, ours.st_ino):
            lock_file.unlink()
    except FileNotFoundError:
        pass
    os.close(fd)


@contextmanager
def writing_into(path: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the writer lock of the run ``path`` belongs to while writing ``path``.

    The rule (every writer keys its lock this way, so two writers of one run always contend):

    1. ``path`` belongs by name to the run it is a part of (``run_of``): ``RUN/checkpoint``,
       ``RUN/tokenizer``, ``RUN/checkpoint/tokenizer``, ``RUN/metrics.jsonl`` lock ``RUN``;
       any other path is a run of its own (``train --out RUN`` and ``save(model, RUN)``
       lock ``RUN``). This needs nothing on disk, so it holds at every moment: before
       ``RUN`` exists, while a trainer is starting in it, after it is finished.
    2. When that run lies inside a directory that already is a run on disk (its parent or
       grandparent holds ``checkpoint/``, ``metrics.jsonl`` or a lock file), that run's
       lock is held too: nothing is written into a run another process is writing
       (``save(model, RUN/other)`` while ``RUN`` trains is refused). A directory another
       process has created but not yet locked (the instant inside ``run_lock`` between
       the two) is not a run yet; a path written there is not one of its files.

    The library's writers (``atomic_directory``, hence ``save``, ``to_hf``, checkpoints,
    SAE and classifier directories; ``train_tokenizer(out_dir=...)``, ``save_tokenizer``)
    and the commands take it. A caller that already holds the lock (the trainer writing
    its run's tokenizer, the demo) takes it again at once: ``run_lock`` is re-entrant.

    Args:
        path: the file or directory about to be written (it may not exist yet).
        command: what is writing, e.g. ``"tl_bilinear.save"`` (shown to a second writer).

    Yields:
        The run directory ``path`` belongs to by name (``run_of(path)``).

    Raises:
        FileExistsError: if ``path`` or a directory to lock is an existing file.
        RunLocked: if another process holds one of the locks; the message names the run
            directory and the holder (pid, command, start time).
    """
    if Path(path).is_file():
        raise FileExistsError(f"{str(path)!r} is a file, not a directory; give a new or existing directory")
    own = run_of(path)
    around = next((run for run in list(own.parents)[:2] if _holds_run(run)), None)
    with run_lock(around, command) if around is not None else nullcontext(), run_lock(own, command):
        yield own


def run_of(path: str | os.PathLike) -> Path:
    """The run directory ``path`` belongs to by its name alone (nothing on disk is read).

    A run's parts (``checkpoint``, ``tokenizer``, ``metrics.jsonl``, the demo's files) and
    what lies in its ``checkpoint/`` belong to the directory above them; anything else is
    a run of its own.

    Args:
        path: a path to be written.

    Returns:
        ``RUN`` for ``RUN/checkpoint``, ``RUN/tokenizer`` or ``RUN/checkpoint/tokenizer``;
        ``path`` itself otherwise.
    """
    path = Path(path)
    for _ in range(2):
        if path.name not in RUN_PARTS:
            break
        path = path.parent
    return path


def _holds_run(directory: Path) -> bool:
    return any((directory / name).exists() for name in (RUN_CHECKPOINT, "metrics.jsonl", LOCK_FILE))


def refuse_replacing_run(directory: str | os.PathLike) -> None:
    """Refuse to replace a training run's directory as a whole (``tl_bilinear.save(model, RUN)``).

    Writing a whole directory swaps it in with everything in it: over a run, its
    checkpoint, metrics and tokenizer would be gone. Writers call it with the lock held.

    Args:
        directory: the directory about to be replaced.

    Raises:
        FileExistsError: if it holds a run's ``checkpoint/`` (or an interrupted save of
            one), naming what it holds and what to write instead.
    """
    path = Path(directory)
    if not path.is_dir() or not any(
        p.name == RUN_CHECKPOINT or p.name.startswith(".checkpoint.") for p in path.iterdir()
    ):
        return
    raise FileExistsError(
        f"{str(path)!r} holds a training run ({'; '.join(run_contents(path))}); writing a directory there would "
        f"replace the whole run. Nothing was changed; write to {str(path / RUN_CHECKPOINT)!r} to replace only its "
        "checkpoint, or choose a new directory"
    )


def carry_lock(directory: str | os.PathLike, into: str | os.PathLike) -> None:
    """Give ``into``, about to replace ``directory`` as a whole, ``directory``'s lock file.

    A hard link: the same file, so the lock held on it stays in place across the swap (a
    second writer finds it and is refused) and its holder removes it on release.

    Args:
        directory: the locked directory (its lock file is held by this process).
        into: the directory that will be swapped in for it.
    """
    try:
        os.link(Path(directory) / LOCK_FILE, Path(into) / LOCK_FILE)
    except OSError as error:  # a filesystem without hard links: the lock then guards only until the swap
        logger.warning("%s: the lock file cannot follow the new directory (%s)", directory, error)


def _remove_if_empty(path: Path, created: bool) -> None:
    if created:
        try:
            path.rmdir()
        except OSError:
            pass  # not empty: keep it


def run_contents(directory: str | os.PathLike) -> list[str]:
    """What of a run (or a saved checkpoint) ``directory`` holds, one phrase per item.

    A checkpoint is described with its step, or as damaged (naming the missing
    ``config.json``); an interrupted save's ``.checkpoint.old`` / temporary folders are
    listed too. Other files (and the lock) are not a run's and are not listed.

    Args:
        directory: the directory (it may not exist).

    Returns:
        Phrases such as ``"checkpoint/ (step 120)"``; empty if nothing of a run is there.
    """
    path = Path(directory)
    if not path.is_dir():
        return []
    found = []
    checkpoint = path / RUN_CHECKPOINT
    if checkpoint.is_dir():
        found.append(_checkpoint_phrase(checkpoint, "checkpoint/"))
    elif checkpoint.exists():
        found.append("a file named checkpoint")
    names = {p.name for p in path.iterdir()}
    here = [name for name in CHECKPOINT_FILES if name in names]
    if here:
        found.append(_checkpoint_phrase(path, "checkpoint files (" + ", ".join(here) + ")"))
    for name in sorted(names):
        if name.startswith(".checkpoint.tmp-") or name == ".checkpoint.old":
            found.append(f"{name}/ (left by an interrupted save)")
    found += [name + "/" * (path / name).is_dir() for name in RUN_FILES if name in names]
    return found


def _checkpoint_phrase(directory: Path, label: str) -> str:
    config = directory / "config.json"
    if not config.is_file():
        present = sorted(p.name for p in directory.iterdir())
        listed = ", ".join(present) if present else "nothing"
        return f"a damaged {label} (no config.json; it holds {listed}: restore config.json to resume it)"
    try:
        step = json.loads(config.read_text()).get("step")
    except (ValueError, AttributeError, OSError):
        return f"a damaged {label} (its config.json is unreadable)"
    return f"{label} (step {step})" if step is not None else label


def remove_run_contents(directory: str | os.PathLike) -> None:
    """Delete what ``run_contents`` lists (and nothing else): for an explicit overwrite.

    Args:
        directory: the run directory.
    """
    path = Path(directory)
    names = [RUN_CHECKPOINT, *CHECKPOINT_FILES, *RUN_FILES]
    names += [p.name for p in path.glob(".checkpoint.*")]
    for name in names:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    logger.warning("overwrite: removed the previous run's files from %s", path)


def refuse_existing_run(directory: str | os.PathLike, *, overwrite: bool = False, fix: str | None = None) -> None:
    """Refuse to start a new run where one (complete or damaged) already is.

    Args:
        directory: the new run's directory.
        overwrite: delete the previous run's files instead (``remove_run_contents``).
        fix: what the message suggests (default: ``--resume``, a new ``--out`` or ``--overwrite``).

    Raises:
        FileExistsError: naming what was found and how to proceed.
    """
    found = run_contents(directory)
    if not found:
        return
    if overwrite:
        remove_run_contents(directory)
        return
    fix = fix or (
        "continue it with --resume (resume=True), choose a new --out, or pass --overwrite "
        "(overwrite=True) to replace it"
    )
    raise FileExistsError(f"{str(directory)!r} already holds a run: {'; '.join(found)}. Nothing was changed; {fix}")


def enclosing_run(path: str | os.PathLike) -> Path:
    """The directory holding a run on disk that ``path`` is or lies in (up to two levels up), else ``path``.

    ``analyze --out`` locks it when a report goes into a run; directory writers key their
    locks with ``writing_into``.

    Args:
        path: a path to be written.

    Returns:
        The nearest of ``path`` and its two parents that holds ``checkpoint/``,
        ``metrics.jsonl`` or a lock file; ``path`` if none does.
    """
    path = Path(path)
    for candidate in (path, *list(path.parents)[:2]):
        if _holds_run(candidate):
            return candidate
    return path
