"""Running the ``tl-bilinear`` command in the test process."""

from tl_bilinear import cli


def run_main(*args, capsys):
    """``cli.main`` in this process (fast): (exit status, stderr)."""
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err


def one_clear_line(status, err, *needles):
    """A refusal: exit 2, one line (no traceback) containing every needle."""
    assert status == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
