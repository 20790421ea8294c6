"""The one progress bar of vadkit (rich), for every long piece of work: extraction, training, scoring."""

from __future__ import annotations


def progress_bar(description: str = "{task.description}", enabled: bool = True, unit: str | None = None):
    """A rich progress display: description, bar, count, an ``info`` field (loss, rates), elapsed and remaining time;
    with ``unit`` (e.g. ``"frames"``) a rate column ``<n> <unit>/s``. ``description`` may use task fields
    (``{task.description}``). Disabled, it draws nothing but still counts (``bar.tasks[i].completed``).

    Tasks must be added with an ``info`` field: ``bar.add_task("videos", total=n, info="")``.
    """
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:6.1f} {unit}/s" if speed else f"  ... {unit}/s", style="cyan")

    columns = [TextColumn(description), BarColumn(), MofNCompleteColumn()]
    if unit:
        columns.append(Rate())
    columns += [TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, disable=not enabled)
