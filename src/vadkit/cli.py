"""The ``vadkit`` command line: thin commands over the library's public functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="vadkit: video anomaly detection on one honest evaluation core.")
datasets_app = typer.Typer(no_args_is_help=True, help="Benchmark layouts and ground truth.")
app.add_typer(datasets_app, name="datasets")

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """Print one clear line (no traceback) and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------------------
@datasets_app.command("list")
def datasets_list() -> None:
    """List the dataset layouts vadkit reads."""
    from vadkit.datasets import list_datasets

    for name in list_datasets():
        console.print(name)


@datasets_app.command("check")
def datasets_check(
    name: str = typer.Argument(..., help="dataset name (see `vadkit datasets list`)"),
    root: Path = typer.Option(..., "--root", help="folder holding the dataset"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object per video"),
) -> None:
    """Validate a dataset layout and its ground truth; print videos, frames and anomalous frames per split."""
    from vadkit.datasets import DatasetError, get_dataset, summarize
    from vadkit.io import VideoReadError

    try:
        dataset = get_dataset(name, root)
        summary = summarize(dataset)
        problems = dataset.check()
    except (DatasetError, VideoReadError, KeyError, FileNotFoundError) as err:
        fail(str(err).strip("'\""))
        return
    if as_json:
        for row in summary["videos"]:
            sys.stdout.write(json.dumps(row) + "\n")
    else:
        table = Table(title=f"{name} at {root}")
        for column in ("split", "videos", "frames", "anomalous frames"):
            table.add_column(column, justify="right" if column != "split" else "left")
        for split, row in summary["splits"].items():
            table.add_row(split, str(row["videos"]), str(row["frames"]), str(row["anomalous_frames"]))
        console.print(table)
        for note in summary.get("notes", []):
            console.print(f"[green]ok[/] {note}", highlight=False)
    if problems:
        for problem in problems:
            err_console.print(f"[bold red]problem:[/] {problem}", highlight=False)
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
