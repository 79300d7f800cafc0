"""Fixtures of the submit tests: the loopback fakes and a ``kfpkit submit`` runner."""

import argparse

import pytest

from kfpkit.cli import submit as submit_command
from tests.submit.fakes import FakeKfp, FakeVertex


@pytest.fixture
def fake_kfp():
    with FakeKfp() as fake:
        yield fake


@pytest.fixture
def fake_vertex():
    with FakeVertex() as fake:
        yield fake


@pytest.fixture
def kfpkit_submit(capsys):
    """Runs ``kfpkit submit ARGV`` in-process; returns (exit status, stdout, stderr)."""

    def run(argv, credentials=None):
        parser = argparse.ArgumentParser(prog="kfpkit submit")
        submit_command.add_arguments(parser)
        status = submit_command.run(parser.parse_args(argv), credentials=credentials)
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run
