"""benchmarks/runners: the task times come from kfpkit run's progress lines; the table has both runners."""

from benchmarks.runners import bench_runners

STDOUT = """kfpkit run training: kfp.local DockerRunner (each task in its image), outputs under /o
[   0.0s] ingest           started
[   3.2s] ingest           done in 3.2s  train 70,000 rows, eval 15,000 rows, test 15,000 rows
[   3.3s] validate         started
[  21.0s] validate         FAILED after 17.7s; its last lines:
"""


def test_task_seconds_reads_the_done_lines_only():
    assert bench_runners.task_seconds(STDOUT) == {"ingest": 3.2}


def test_the_report_gives_each_runners_median_of_successful_runs_and_the_ratio():
    times = [
        bench_runners.RunTime("subprocess", 10.0, 0, {"ingest": 2.0}),
        bench_runners.RunTime("docker", 15.0, 0, {"ingest": 3.0}),
        bench_runners.RunTime("docker", 1.0, 1, {}),  # failed: left out
    ]
    lines = bench_runners.report(times)
    assert lines[1].split() == ["pipeline", "(wall)", "10.0", "15.0", "1.50"]
    assert lines[2].split() == ["ingest", "2.0", "3.0", "1.50"]
