"""What a task's process costs beyond its work: it exits without collecting every object its imports made."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# at exit, print whether gc.freeze ran before this handler (atexit runs the handlers registered later first)
_REPORT_FREEZE_AT_EXIT = "import atexit, gc\natexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"


def _exit_report(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _REPORT_FREEZE_AT_EXIT + code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return out.stdout.strip().splitlines()[-1]


def test_a_process_that_skips_the_final_collection_freezes_its_objects_at_exit_and_one_that_does_not_does_not():
    call = "from kfpkit.components.process_exit import skip_final_garbage_collection\n"
    assert _exit_report(call + "skip_final_garbage_collection()\n") == "frozen True"
    assert _exit_report(call) == "frozen False"


def test_skipping_the_final_collection_registers_one_exit_handler_however_often_it_is_called():
    code = (
        "import atexit\n"
        "from kfpkit.components.process_exit import skip_final_garbage_collection\n"
        "before = atexit._ncallbacks()\n"
        "skip_final_garbage_collection(); skip_final_garbage_collection()\n"
        "print(atexit._ncallbacks() - before)\n"
    )
    assert _exit_report(code) == "frozen True"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "1"


def test_ingest_train_evaluate_and_infra_validate_processes_skip_the_final_collection_even_when_input_is_refused():
    calls = {
        "train": "from kfpkit.components.train.logic import train_model, TrainParams\n"
        "train_model('t.parquet', 'e.parquet', 'y', 'out', TrainParams(framework='nope'))\n",
        "evaluate": "from kfpkit.components.evaluate.logic import run_evaluation\n"
        "run_evaluation('m', 't.parquet', 'y', baseline_registry_root='r')\n",
        "ingest": "from kfpkit.components.ingest.logic import run_ingest\n"
        "run_ingest('synthetic://fraud?rows=10', 'y', 'a', 'b', 'c', eval_fraction=2.0)\n",
        "infra_validate": "from kfpkit.components.infra_validate.logic import run_infra_validate\n"
        "run_infra_validate('m', 'e.parquet', num_requests=0)\n",
    }
    for task, call in calls.items():
        code = f"try:\n    exec({call!r})\nexcept Exception as exc:\n    print('refused', type(exc).__name__)\n"
        assert _exit_report(code) == "frozen True", task


def test_evaluating_scores_imports_neither_sklearn_nor_scipy():
    code = (
        "import sys, numpy as np\n"
        "from kfpkit.components.evaluate import logic, report\n"
        "from kfpkit.core import bootstrap, classification_metrics as m\n"
        "rng = np.random.default_rng(0)\n"
        "y = (rng.random(500) < 0.1).astype(int); p = np.clip(0.3 * y + 0.7 * rng.random(500), 0, 1)\n"
        "m.split_metrics(y, p, 0.5); m.roc_points(y, p); m.reliability_curve(y, p)\n"
        "m.slice_metrics(y, p, ['a', 'b'] * 250, 0.5); m.max_f1_threshold(y, p)\n"
        "bootstrap.intervals(y, p, 0.5, resamples=20)\n"
        "bootstrap.paired_difference(y, p, p ** 2, 'pr_auc', resamples=20)\n"
        "print(sorted(name for name in ('sklearn', 'scipy') if name in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip().splitlines()[-1] == "[]"
