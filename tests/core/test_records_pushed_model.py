"""PushedModel (push's output and the registry pointer) and the one parser of registry version URIs."""

import dataclasses

import pytest

from kfpkit.core.records import RecordError, read_record, write_record
from kfpkit.core.registry import PushedModel, RegistryError, VersionUri, parse_version_uri

DIGEST = "ab" * 32


def _pushed(**changes) -> PushedModel:
    pushed = PushedModel("gs://bucket/models/fraud-detector/3", 3, DIGEST, True, "fraud-detector", "gs://bucket/models")
    return dataclasses.replace(pushed, **changes)


def test_pushed_model_round_trips_through_its_json_file(tmp_path):
    pushed = _pushed(created=False)
    write_record(str(tmp_path / "pushed.json"), pushed)
    assert read_record(str(tmp_path / "pushed.json"), PushedModel) == pushed
    document = pushed.to_dict()
    assert (document["record"], document["record_version"], document["version"]) == ("pushed model", 1, 3)


def test_pushed_model_of_another_record_version_is_refused():
    document = dict(_pushed().to_dict(), record_version=2)
    with pytest.raises(RecordError, match="pushed model: record_version must be 1, got 2"):
        PushedModel.from_dict(document)


@pytest.mark.parametrize("name", ["model_uri", "version", "content_sha256", "created", "model_name", "registry_root"])
def test_pushed_model_without_a_field_is_refused_naming_it(name):
    document = _pushed().to_dict()
    del document[name]
    with pytest.raises(RecordError, match=f"pushed model: {name} is missing"):
        PushedModel.from_dict(document)


def test_pushed_model_with_a_string_version_is_refused_naming_the_field():
    with pytest.raises(RecordError, match="version must be an integer, got '3'"):
        PushedModel.from_dict(dict(_pushed().to_dict(), version="3"))


def test_pushed_model_whose_version_is_not_the_uris_is_refused():
    with pytest.raises(RecordError, match="does not end in /fraud-detector/4"):
        PushedModel.from_dict(dict(_pushed().to_dict(), version=4))
    with pytest.raises(RecordError, match="content_sha256 must be 64 lowercase hex digits"):
        PushedModel.from_dict(dict(_pushed().to_dict(), content_sha256="x"))


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("gs://bucket/registry/fraud/12", VersionUri("gs://bucket/registry", "fraud", 12)),
        ("s3://b/fraud-detector/1/", VersionUri("s3://b", "fraud-detector", 1)),
        ("/mnt/registry/fraud-detector/3", VersionUri("/mnt/registry", "fraud-detector", 3)),
        ("file:///tmp/r/m2/40", VersionUri("file:///tmp/r", "m2", 40)),
    ],
)
def test_a_registry_version_uri_parses_into_root_model_and_an_int_version(uri, expected):
    parsed = parse_version_uri(uri)
    assert parsed == expected and isinstance(parsed.version, int)


@pytest.mark.parametrize(
    "uri", ["/tmp/model", "gs://fraud/1", "fraud/1", "/r/Fraud_Model/1", "/r/fraud/0", "/r/fraud/07", "/r/fraud/v1", ""]
)
def test_a_uri_that_is_not_a_registry_version_is_refused_naming_it(uri):
    with pytest.raises(RegistryError, match="is not a registry version URI"):
        parse_version_uri(uri)
