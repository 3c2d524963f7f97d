"""Running the ``tl-bilinear`` command in the test process."""

from tl_bilinear import cli


def run_main(*args, capsys):
    """``cli.main`` in this process (fast): (exit status, stderr)."""
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err
