"""The console of `tremplin run` and the origin of its runs, on a tiny test source (fast).

The whole-pipeline version is in tests/test_run_console_and_warehouse.py.
"""

from __future__ import annotations

import io
import logging
import os
import sys

import dagster as dg
import periodic_source as ps

from pipelines.console import Console, RunProgress, new_log_path, quiet_run
from pipelines.launch import execute_job, repository_label


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_run_gives_one_line_per_source_and_belongs_to_its_job(env):
    from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

    ps.write_quarter(env / "mirror", 2024, 2, 20)
    defs = ps.build_test_definitions()
    job = defs.resolve_job_def(f"ingest_{ps.SLUG}")
    instance = dg.DagsterInstance.ephemeral()
    screen = _Terminal()
    with RunProgress(Console(screen, screen), label="2024-04-01") as progress:
        result = execute_job(job, instance, partition_key="2024-04-01", on_event=progress)
    assert result.success
    lines = [line.split("\r\x1b[K")[-1] for line in screen.getvalue().split("\n")]
    (source,) = [line for line in lines if line.startswith("  ingest ")]
    assert f"{ps.SLUG} 2024-04-01" in source and "1 new file, parsed" in source
    assert "1 tables" in source and "2 rows" in source
    assert "\r\x1b[K  … " in screen.getvalue()  # the progress line, on a terminal
    # Listed the way the UI's Jobs page lists a job's runs, with its partition.
    (run,) = instance.get_runs(
        dg.RunsFilter(job_name=job.name, tags={REPOSITORY_LABEL_TAG: repository_label()})
    )
    assert run.run_id == result.run_id and run.tags["dagster/partition"] == "2024-04-01"
    assert run.job_code_origin.repository_origin.code_pointer.module == "pipelines.definitions"


def test_quiet_run_sends_the_stream_to_the_log_and_warnings_to_the_console(tmp_path, capfd):
    log_path = new_log_path(tmp_path, "run")
    with quiet_run(log_path) as console:
        print("a line of Dagster's stream")
        os.system("echo from a child process")  # noqa: S605 - a child writing to fd 1
        logging.getLogger("assets.ingest.http").warning("the publisher is slow")
        logging.getLogger("some.library").warning("library chatter")
        console.line("  ingest   one line")
    sys.stdout.flush()
    out, err = capfd.readouterr()
    assert out == "  ingest   one line\n"
    assert "warning: the publisher is slow" in err and "chatter" not in err
    text = log_path.read_text()
    assert "a line of Dagster's stream" in text and "from a child process" in text
    assert log_path.parent == tmp_path / "logs"


def test_verbose_keeps_everything_on_the_console(capfd):
    with quiet_run(None) as console:
        print("the full stream")
        console.line("a line")
    out, _ = capfd.readouterr()
    assert out == "the full stream\na line\n"


def test_runs_started_in_the_same_second_get_a_log_file_each(tmp_path):
    paths = [new_log_path(tmp_path, "run") for _ in range(3)]
    assert len(set(paths)) == 3 and all(p.exists() for p in paths)
    assert [p.name.count("-run") for p in paths] == [1, 1, 1]
