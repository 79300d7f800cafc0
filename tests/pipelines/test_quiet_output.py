"""The quiet ``kfpkit run`` output: kfp.local's recorded stdout replayed through :class:`RunLog`."""

import io
import re
import threading

from kfpkit.pipelines import local

TASKS = ["ingest", "validate", "train", "evaluate", "infra-validate", "push"]
PROGRESS = re.compile(r"^\[ *\d+\.\ds\] (?P<task>\S+) +(?P<what>.*)$")


class Clock:
    """One second per reading: durations in the output are deterministic."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def _replay(text, run_dir, log_path, verbose=False, chunk=7):
    """Writes ``text`` to a RunLog in odd-sized chunks (as print/logging do); returns (run_log, progress)."""
    progress = io.StringIO()
    run_log = local.RunLog(
        str(log_path), progress, verbose=verbose, find_task_dir=lambda task: str(run_dir / task), clock=Clock()
    )
    for start in range(0, len(text), chunk):
        run_log.write(text[start : start + chunk])
    run_log.close()
    return run_log, progress.getvalue()


def test_each_task_prints_one_line_when_it_starts_and_one_with_its_key_outputs_when_it_ends(recorded_run, tmp_path):
    run_dir, stdout = recorded_run("succeeded")
    run_log, out = _replay(stdout, run_dir, tmp_path / "run.log")
    lines = out.splitlines()
    events = [(m["task"], m["what"]) for m in map(PROGRESS.match, lines)]
    assert [task for task, _ in events] == [t for t in TASKS for _ in (0, 1)]
    assert all(what == "started" for _, what in events[::2])
    ends = {task: what for task, what in events[1::2]}
    assert re.fullmatch(r"done in \d+\.\ds  train 4,142 rows, eval 884 rows, test 974 rows", ends["ingest"])
    assert ends["validate"].endswith("  data valid")
    assert ends["train"].endswith("  PR-AUC 0.4258, ECE 0.0195 (eval)")
    assert ends["evaluate"].endswith("  PR-AUC 0.3851, ECE 0.0169 (test), blessed")
    assert re.search(r"  p99 \d+\.\d\d ms, serves in KServe$", ends["infra-validate"])
    assert ends["push"].endswith("  version 1")
    assert run_log.failed_tasks == [] and run_log.pipeline_status == "SUCCESS"


def test_the_run_log_holds_every_line_without_colours_and_tagged_with_its_task(recorded_run, tmp_path):
    run_dir, stdout = recorded_run("failed")  # recorded with colours (kfp.local's ANSI codes)
    assert "\x1b[" in stdout
    _replay(stdout, run_dir, tmp_path / "run.log")
    logged = (tmp_path / "run.log").read_text().splitlines()
    assert len(logged) == len(stdout.splitlines())
    assert not any("\x1b" in line for line in logged)
    assert "[ingest]     kfpkit.components.ingest.errors.IngestError: source file not found: " in "\n".join(logged)
    assert logged[0].endswith("INFO - Running pipeline: 'kfpkit-training'")  # before any task: no tag
    assert logged[-1].startswith("2026-") and "Cleaned up workspace" in logged[-1]


def test_a_failed_task_prints_its_last_20_lines_and_the_log_path(recorded_run, tmp_path):
    run_dir, stdout = recorded_run("failed")
    run_log, out = _replay(stdout, run_dir, tmp_path / "run.log")
    lines = out.splitlines()
    assert PROGRESS.match(lines[0])["what"] == "started"
    assert re.fullmatch(r"FAILED after \d+\.\ds; its last lines:", PROGRESS.match(lines[1])["what"])
    tail = [line for line in lines if line.startswith("    | ")]
    assert len(tail) == local.FAILED_TAIL_LINES
    assert tail[-1].endswith("IngestError: source file not found: '/tmp/b_fail/nope.csv'")
    assert lines[2 + len(tail)] == f"    full log: {tmp_path / 'run.log'}"
    assert len(lines) == 3 + len(tail)
    assert run_log.failed_tasks == ["ingest"] and run_log.pipeline_status == "FAILURE"


def test_verbose_streams_every_log_line_as_well_as_the_progress(recorded_run, tmp_path):
    run_dir, stdout = recorded_run("failed")
    _, out = _replay(stdout, run_dir, tmp_path / "run.log", verbose=True)
    ours = ("    | ", "    full log: ")
    streamed = [line for line in out.splitlines() if not PROGRESS.match(line) and not line.startswith(ours)]
    assert streamed[: len(stdout.splitlines())] == stdout.splitlines()


def test_quiet_run_and_summary_fit_in_40_lines(recorded_run, tmp_path):
    run_dir, stdout = recorded_run("succeeded")
    _, out = _replay(stdout, run_dir, tmp_path / "run.log")
    summary = local.summarize_run(str(run_dir), str(run_dir.parent), True, 70.0, run_log=str(tmp_path / "run.log"))
    printed = out.splitlines() + local.format_summary(summary).splitlines()
    assert len(stdout.splitlines()) > 100 and len(printed) <= 40 - 2  # the header line and the log path line


def test_parallel_tasks_are_told_apart_by_the_thread_that_writes(tmp_path):
    progress = io.StringIO()
    run_log = local.RunLog(str(tmp_path / "run.log"), progress, clock=Clock())
    barrier = threading.Barrier(2)

    def task(name, status):
        run_log.write(f"10:00:00.000 - INFO - Executing task '{name}'\n")
        barrier.wait()
        for i in range(30):
            run_log.write(f"    {name} line {i}\n")
        barrier.wait()
        level = "INFO" if status == "SUCCESS" else "ERROR"
        run_log.write(f"10:00:01.000 - {level} - Task '{name}' finished with status {status}\n")

    threads = [threading.Thread(target=task, args=a) for a in (("left", "SUCCESS"), ("right", "FAILURE"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_log.close()
    tail = [line[len("    | ") :] for line in progress.getvalue().splitlines() if line.startswith("    | ")]
    assert tail == [f"    right line {i}" for i in range(10, 30)]
    logged = (tmp_path / "run.log").read_text().splitlines()
    assert sum(line.startswith("[left]     left line") for line in logged) == 30
    assert not any(line.startswith("[left]") and "right" in line for line in logged)
    assert run_log.failed_tasks == ["right"]


def test_the_run_log_moves_into_the_run_folder_and_keeps_being_written(tmp_path):
    run_log = local.RunLog(str(tmp_path / "pending.run.log"), io.StringIO())
    run_log.write("before\n")
    (tmp_path / "run").mkdir()
    run_log.move_to(str(tmp_path / "run" / "run.log"))
    run_log.write("after\n")
    run_log.close()
    assert not (tmp_path / "pending.run.log").exists()
    assert (tmp_path / "run" / "run.log").read_text() == "before\nafter\n"


def test_a_pipeline_that_cannot_start_reports_why_and_keeps_its_log_beside_the_run_folders(tmp_path):
    out = io.StringIO()
    arguments = {
        "registry_root": str(tmp_path / "r"),
        "source": "synthetic://fraud?rows=100",
        "label_column": "is_fraud",
        "model_name": "fraud-detector",
        "epochs": "three",
    }
    summary = local.run_pipeline_locally("training", arguments, str(tmp_path / "outputs"), progress=out)
    assert summary.status == "failed" and summary.run_dir is None
    log_path = summary.run_log
    assert re.fullmatch(re.escape(str(tmp_path / "outputs")) + r"/kfpkit-training-[0-9-]+\.run\.log", log_path)
    assert "the pipeline did not run: InconsistentTypeException" in out.getvalue() and log_path in out.getvalue()
    assert "'epochs'" in open(log_path).read()
