"""KFP component: read a table (synthetic, local, gs://, s3://, http(s)://), write train/eval/test Parquet datasets."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Output

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def ingest(
    source: str,
    label_column: str,
    train_data: Output[Dataset],
    eval_data: Output[Dataset],
    test_data: Output[Dataset],
    eval_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_key_column: Optional[str] = None,
    file_format: Optional[str] = None,
    seed: int = 0,
):
    """Reads a table, normalizes its binary label and splits it into train, eval and test Parquet datasets.

    The label is normalized to int64 0/1 (0/1 ints, bools and the strings "0"/"1"/"true"/"false" are
    accepted). One uniform hash value per row decides its split: the blake2b hash of its key (the
    ``split_key_column`` value, or the row number) salted with ``seed``, as a fraction ``u`` of 2**64, puts
    the row in eval when ``u < eval_fraction``, in test when ``eval_fraction <= u < eval_fraction +
    test_fraction``, and in train otherwise, so the split is the same on every run and machine. The three
    files are written deterministically (same input, same bytes and sha256) and published together; bad
    input (missing, empty or unparsable file, missing or non-binary label, bad fraction or synthetic
    parameter, empty split, train or eval split with a single class) fails with one ``IngestError``
    naming the problem and leaves no output file.

    Args:
        source: ``synthetic://fraud?rows=N&seed=S&fraud_rate=R&drift=D`` (the built-in card-transaction
            generator), a local path, or a ``file://``, ``gs://`` (extra ``kfpkit[gcs]``), ``s3://`` (extra
            ``kfpkit[s3]``) or ``http(s)://`` URI of a CSV, Parquet or JSON Lines file.
        label_column: Binary label column; ``is_fraud`` for synthetic sources.
        train_data: Output train split, one Parquet file; metadata: rows, columns (name to dtype), sha256,
            source_uri, label_column, label_rate, split, format, split_key, eval_fraction, test_fraction,
            split_seed.
        eval_data: Output eval split (train's early stopping, calibration and threshold), one Parquet file
            with the same columns and metadata keys.
        test_data: Output test split (evaluate's metrics and gate only), one Parquet file with the same
            columns and metadata keys.
        eval_fraction: Expected share of rows in the eval split, strictly between 0 and 1.
        test_fraction: Expected share of rows in the test split, strictly between 0 and 1; together with
            ``eval_fraction`` below 1 (train gets the rest).
        split_key_column: Column whose values are hashed to assign the split (rows sharing a value stay
            together); unset or empty: the row's position in the source.
        file_format: ``csv``, ``parquet`` or ``jsonl``; default: inferred from the file extension.
        seed: Salt of the split hash; another seed gives another, equally stable split.
    """
    from kfpkit.components.ingest.logic import run_ingest

    result = run_ingest(
        source=source,
        label_column=label_column,
        train_path=train_data.path,
        eval_path=eval_data.path,
        test_path=test_data.path,
        eval_fraction=eval_fraction,
        test_fraction=test_fraction,
        split_key_column=split_key_column or None,
        file_format=file_format,
        seed=seed,
    )
    train_data.metadata.update(result.train_metadata)
    eval_data.metadata.update(result.eval_metadata)
    test_data.metadata.update(result.test_metadata)
