"""Re-record a fixture of this folder from a real run (run from the repository root; not part of the suite).

    .venv/bin/kfpkit run training --source 'synthetic://fraud?rows=6000&seed=3&fraud_rate=0.08' \
        --label-column is_fraud --model-name fraud-detector --registry /tmp/rec/registry \
        --pipeline-root /tmp/rec/outputs --epochs 3 --batch-size 256 --verbose > /tmp/rec/stdout.txt
    .venv/bin/python tests/pipelines/recorded_run/record.py /tmp/rec/stdout.txt \
        /tmp/rec/outputs/kfpkit-training-* /tmp/rec/registry succeeded

Keeps kfp.local's stdout (without kfpkit's own progress and summary lines; executor-input dumps trimmed
unless the label is ``failed``), every task's ``executor_output.json`` (ROC points cut to 3) and the
trained model's ``model_card.json``; the run folder and registry paths become ``{RUN_DIR}`` and
``{REGISTRY}``.
"""

import glob
import json
import os
import re
import sys

OURS = re.compile(r"^\[ *\d+\.\d+s\] |^    \| |^    full log: |^kfpkit run ")


def main(stdout_path: str, run_dir: str, registry: str, label: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    run_dir = os.path.abspath(run_dir)

    def fill(text: str) -> str:
        return text.replace(run_dir, "{RUN_DIR}").replace(os.path.abspath(registry), "{REGISTRY}")

    kept, in_dump = [], False
    with open(stdout_path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    for line in lines:
        if line.startswith("kfpkit training run:"):
            break
        if OURS.match(line):
            continue
        if in_dump:
            if line == "    }":
                in_dump = False
                kept.append("    { ...executor input trimmed... }")
            continue
        if label != "failed" and line.rstrip().endswith("Got executor_input:"):
            in_dump = True
        kept.append(line)
    with open(os.path.join(here, f"{label}_stdout.txt"), "w", encoding="utf-8") as fh:
        fh.write(fill("\n".join(kept).rstrip("\n") + "\n"))

    target = os.path.join(here, label)
    for path in sorted(glob.glob(os.path.join(run_dir, "*", "executor_output.json"))):
        task = os.path.basename(os.path.dirname(path))
        with open(path, encoding="utf-8") as fh:
            document = json.load(fh)
        for value in document.get("artifacts", {}).values():
            for artifact in value.get("artifacts", []):
                if "confidenceMetrics" in artifact.get("metadata", {}):
                    artifact["metadata"]["confidenceMetrics"] = artifact["metadata"]["confidenceMetrics"][:3]
        os.makedirs(os.path.join(target, task), exist_ok=True)
        with open(os.path.join(target, task, "executor_output.json"), "w", encoding="utf-8") as fh:
            fh.write(fill(json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False)) + "\n")
    card = os.path.join(run_dir, "train", "model", "model_card.json")
    if os.path.exists(card):
        os.makedirs(os.path.join(target, "train", "model"), exist_ok=True)
        with (
            open(card, encoding="utf-8") as src,
            open(os.path.join(target, "train", "model", "model_card.json"), "w") as dst,
        ):
            dst.write(fill(src.read()))
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "recorded.json"), "w", encoding="utf-8") as fh:
        json.dump({"run_dir_name": os.path.basename(run_dir)}, fh)


if __name__ == "__main__":
    main(*sys.argv[1:5])
