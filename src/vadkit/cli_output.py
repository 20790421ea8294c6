"""What every ``vadkit`` command prints through: the consoles, the one clear error line, the shared options (`--device`,
`--ray [ADDRESS]`) and how they are read."""

from __future__ import annotations

from typing import Sequence

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


DEVICE_OPTION = typer.Option("auto", "--device", metavar="auto|cpu|cuda|cuda:N",
                             help="where the networks run: auto (CUDA when torch sees one, else the CPU), cpu, cuda "
                             "or cuda:N")


def resolve_device_option(requested: str) -> str:
    """The one place a command resolves ``--device``: prints it once (stderr) and returns it (``cpu``,
    ``cuda:0``, ...); a device this machine cannot give is one clear line and exit status 1."""
    from vadkit.device import describe_device, resolve_device

    try:
        device = resolve_device(requested)
    except (ValueError, RuntimeError) as err:
        fail(str(err))
        raise  # fail() raised typer.Exit already; this line is never reached
    err_console.print(describe_device(device), highlight=False, soft_wrap=True)
    return str(device)


def ray_flag_argv(argv: Sequence[str]) -> list[str]:
    """Command-line arguments with a bare ``--ray`` (no address after it) written as ``--ray=local``.

    Typer options always take a value, so ``--ray [ADDRESS]`` is read in two steps: the next argument is taken as the
    address only when it looks like one (``auto``, ``local``, ``host:port``, ``ray://...``); anything else (another
    option, a video path, nothing) leaves ``--ray`` bare, meaning "start a local cluster".
    """
    from vadkit.inference.cluster import LOCAL, looks_like_address

    out: list[str] = []
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--ray" and not (i + 1 < len(args) and looks_like_address(args[i + 1])):
            out.append(f"--ray={LOCAL}")
        else:
            out.append(arg)
    return out
