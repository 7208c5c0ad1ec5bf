"""`nakadi fsck DATA_DIR`: the offline, read-only check of a data directory.

The checking is `broker.fsck`'s (and below it `storage.check`'s); this
module shows a progress bar on a terminal, prints the report and sets the
exit status: 0 when clean, 1 when anything is wrong, 2 on usage errors
(click's, and a directory without `event-types/`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from broker import fsck as checker

from .cli_client import echo_json, is_terminal

EXIT_DAMAGED = 1


@click.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format")
def fsck(data_dir: Path, output_format: str) -> None:
    """Check every segment and index under DATA_DIR without changing anything.

    Run it on the data directory of a stopped server: segments a running
    one is writing may show a torn tail."""
    try:
        partitions, problems = checker.find_partitions(str(data_dir))
    except (FileNotFoundError, NotADirectoryError):
        raise click.UsageError(f"{data_dir} holds no {checker.event_types_root('')} directory; "
                               "is it a nakadi data directory?") from None
    reports = []
    with _progress(sum(p.bytes for p in partitions)) as advance:
        for partition in partitions:
            reports.append((partition, checker.check(partition, on_bytes=advance)))
    problem_count = len(problems) + sum(len(r.problems) for _, r in reports)
    if output_format == "json":
        echo_json(_json(reports, problems))
    else:
        _print(reports, problems, problem_count)
    if problem_count:
        sys.exit(EXIT_DAMAGED)


@contextlib.contextmanager
def _progress(total_bytes: int) -> Iterator[Callable[[int], None]]:
    if not is_terminal(sys.stderr) or total_bytes == 0:
        yield lambda n: None
        return
    with click.progressbar(length=total_bytes, label="checking", file=sys.stderr) as bar:
        yield bar.update


def _print(reports: list, problems: list, problem_count: int) -> None:
    for problem in problems:
        click.echo(_problem_line(problem))
    for partition, report in reports:
        status = "ok" if report.clean else f"{len(report.problems)} problem(s)"
        click.echo(f"{partition.event_type}/{partition.partition}: {len(report.segments)} segments, "
                   f"{report.records} records, {report.bytes} bytes, {status}")
        for problem in report.problems:
            click.echo("  " + _problem_line(problem))
    segments = sum(len(r.segments) for _, r in reports)
    records = sum(r.records for _, r in reports)
    checked_bytes = sum(r.bytes for _, r in reports)
    click.echo(f"checked {len(reports)} partitions: {segments} segments, {records} records, {checked_bytes} bytes; "
               + (f"{problem_count} problem(s)" if problem_count else "clean"))


def _problem_line(problem) -> str:
    where = [problem.path]
    if problem.position is not None:
        where.append(f"byte {problem.position}")
    if problem.offset is not None:
        where.append(f"offset {problem.offset}")
    return f"{problem.kind}: {' '.join(where)}: {problem.detail}"


def _json(reports: list, problems: list) -> dict:
    def problem_json(p) -> dict:
        return {"path": p.path, "kind": p.kind, "position": p.position, "offset": p.offset, "detail": p.detail}
    return {
        "clean": not problems and all(r.clean for _, r in reports),
        "problems": [problem_json(p) for p in problems],
        "partitions": [{
            "event_type": partition.event_type, "partition": partition.partition,
            "segments": [{"path": s.path, "base_offset": s.base_offset, "end_offset": s.end_offset,
                          "records": s.records, "bytes": s.bytes} for s in report.segments],
            "records": report.records, "bytes": report.bytes,
            "problems": [problem_json(p) for p in report.problems],
        } for partition, report in reports],
    }
