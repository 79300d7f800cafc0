"""What the pipeline compiler imports stays light: no torch, TFDV/TensorFlow or kserve at import time."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # `-c` imports tools/ from the working directory
HEAVY = ("torch", "tensorflow", "tensorflow_data_validation", "kserve", "sklearn", "apache_beam")


def test_compiling_pipelines_imports_no_heavy_library():
    code = (
        "import sys, json, tempfile\n"
        "from kfpkit.pipelines import targets\n"
        "from tools import component_readmes as docs\n"
        "[docs.load_component(f) for f in docs.component_modules()]\n"
        "targets.compile_all(tempfile.mkdtemp())\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_no_environment_reads_at_import_or_compile_time():
    code = (
        "import os, tempfile\n"
        "class Spy(dict):\n"
        "    reads = []\n"
        "    def get(self, k, d=None):\n"
        "        Spy.reads.append(k); return super().get(k, d)\n"
        "    def __getitem__(self, k):\n"
        "        Spy.reads.append(k); return super().__getitem__(k)\n"
        "spy = Spy(os.environ)\n"
        "import kfpkit.pipelines.targets as t\n"
        "real = os.environ\n"
        "os.environ = spy\n"
        "try:\n"
        "    import kfpkit.pipelines.training, kfpkit.cli.main\n"
        "    t.compile_all(tempfile.mkdtemp())\n"
        "finally:\n"
        "    os.environ = real\n"
        "print([k for k in Spy.reads if k.startswith('KFPKIT')])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
