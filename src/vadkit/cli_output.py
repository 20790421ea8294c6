"""What every ``vadkit`` command prints through: the consoles and the one clear error line."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

# What a command reports as one line: bad input of any layer (DatasetError, ConfigError, ModelFileError,
# StoreMismatchError, UnknownNameError are ValueErrors), files that cannot be read (OSError) and videos that cannot
# be decoded (VideoReadError is a RuntimeError). Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError, RuntimeError)

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """Print one clear line (no traceback) and exit."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def ray_options() -> tuple:
    """The ``--ray [ADDRESS]``, ``--threads`` and ``--workers`` options of `extract` and `score` (their defaults)."""
    return (typer.Option(None, "--ray", metavar="[ADDRESS]", help="run on Ray (pip install 'vadkit\\[ray]'): alone, a "
                         "local cluster; auto, the one `ray start` runs here; host:port, that cluster's head"),
            typer.Option(1, "--threads", help="with --ray: torch threads of each worker"),
            typer.Option(None, "--workers", help="with --ray: workers to start (default: the cluster's CPUs / "
                         "--threads)"))


RAY_OPTION, THREADS_OPTION, WORKERS_OPTION = ray_options()

# `--fps` of score, fit-normal, evaluate and extract: the rate of frame folders (video files keep their own)
FPS_OPTION = typer.Option(None, "--fps", help="frame rate of frame folders (default: the benchmark layout's, "
                          "e.g. UCSD 10; else 25); video files keep their own")
