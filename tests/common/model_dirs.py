"""What the tests in tests/common write beside a fitted model: the preprocessing spec, the model card and
(when given) the calibration, as train's model directory has them."""

from __future__ import annotations

import os
from typing import Optional

from kfpkit.core import model_dir as md
from kfpkit.core.preprocessing import PreprocessingSpec


def write_spec_card_and_calibration(
    directory: str, spec: PreprocessingSpec, framework: str, label: str, calibration: Optional[md.PlattCalibration]
) -> None:
    spec.save(os.path.join(directory, md.PREPROCESSING_FILE))
    card = md.ModelCard(
        framework=framework,
        model_file=md.MODEL_FILES[framework],
        label_column=label,
        feature_order=list(spec.feature_order),
        decision_threshold=0.5,
        calibration=None if calibration is None else calibration.method,
    )
    if calibration is not None:
        calibration.save(directory)
    md.write_model_card(directory, card)
