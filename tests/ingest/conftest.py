"""Fixtures of the ingest tests: output paths, tiny tables and a loopback HTTP server."""

import functools
import http.server
import threading

import pandas as pd
import pytest


@pytest.fixture
def outputs(tmp_path):
    """(train_path, eval_path, test_path, out_dir): outputs under a folder that does not exist yet."""
    out = tmp_path / "out"
    return (*(str(out / split / "data.parquet") for split in ("train", "eval", "test")), out)


@pytest.fixture
def small_frame():
    """60 rows: an integer id, a customer key shared by pairs of rows, two features and a 0/1 label."""
    rows = 60
    return pd.DataFrame(
        {
            "id": list(range(rows)),
            "customer": [f"c{i // 2}" for i in range(rows)],
            "amount": [float(i) * 1.5 for i in range(rows)],
            "channel": ["online" if i % 3 else "in_store" for i in range(rows)],
            "label": [i % 4 == 0 for i in range(rows)],
        }
    ).assign(label=lambda f: f["label"].astype("int64"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    """(folder, base_url): files put in the folder are served at base_url by a loopback HTTP server."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
