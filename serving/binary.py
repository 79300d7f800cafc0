"""The Open Inference Protocol's binary tensor extension for REST (what ``tritonclient.http`` sends by default).

A binary request is a JSON header followed by raw tensor bytes::

    Inference-Header-Content-Length: <bytes of the JSON header>
    {"inputs": [{"name": "amount", "datatype": "FP64", "shape": [2],
                 "parameters": {"binary_data_size": 16}}, ...],
     "parameters": {"binary_data_output": true}}<16 bytes of amount><... next binary input ...>

Each input either has JSON ``data`` or ``parameters.binary_data_size`` (its bytes follow the header, in
input order, little-endian, row-major). BYTES elements are each a 4-byte little-endian length followed
by that many bytes (UTF-8 here: categories are strings). Outputs are returned binary when the request
asks (``parameters.binary_data_output``, overridden per output by ``outputs[i].parameters.binary_data``);
the response then carries ``Inference-Header-Content-Length`` too.

:func:`decode_request` turns a binary body into the plain JSON body of :mod:`kfpkit.serving.protocol`
(numeric data as numpy arrays, BYTES as lists of ``str``), so both REST paths and gRPC
(:func:`tensor_from_raw`) share the decoder. Every framing error -- a corrupt header length, a
``binary_data_size`` that does not match shape x datatype, a truncated body, trailing bytes, invalid
UTF-8 -- is a :class:`~kfpkit.serving.protocol.BadRequest` naming the input.
"""

from __future__ import annotations

import struct
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import orjson

from kfpkit.serving.protocol import BadRequest

HEADER_LENGTH_HEADER = "inference-header-content-length"
HEADER_LENGTH_HEADER_BYTES = HEADER_LENGTH_HEADER.encode()

NUMPY_DTYPES: Dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_UINT32 = struct.Struct("<I")


def parse_header_length(value: Any, body_size: int) -> int:
    """The JSON header size from the ``Inference-Header-Content-Length`` header value.

    Raises:
        BadRequest: not a non-negative integer, or larger than the body.
    """
    text = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)
    if not text.strip().isdigit():
        raise BadRequest(f"Inference-Header-Content-Length must be a non-negative integer, got {text!r}")
    length = int(text)
    if length == 0:
        raise BadRequest("Inference-Header-Content-Length is 0: the JSON header is empty")
    if length > body_size:
        raise BadRequest(f"Inference-Header-Content-Length is {length} but the body has only {body_size} bytes")
    return length


def _element_count(shape: Sequence[int], where: str) -> int:
    count = 1
    for d in shape:
        count *= d
    if count > 1 << 31:
        raise BadRequest(f"{where}: shape {list(shape)} is too large")
    return count


def decode_bytes_elements(raw: bytes, count: int, where: str) -> List[str]:
    """``count`` length-prefixed UTF-8 strings that fill ``raw`` exactly.

    Raises:
        BadRequest: a length runs past the end, the count differs, or an element is not UTF-8.
    """
    out: List[str] = []
    offset = 0
    size = len(raw)
    view = memoryview(raw)
    while offset < size:
        if offset + 4 > size:
            raise BadRequest(f"{where}: BYTES element #{len(out)} has a truncated 4-byte length prefix")
        (length,) = _UINT32.unpack_from(raw, offset)
        offset += 4
        if offset + length > size:
            raise BadRequest(
                f"{where}: BYTES element #{len(out)} claims {length} bytes but only {size - offset} remain"
            )
        try:
            out.append(str(view[offset : offset + length], "utf-8"))
        except UnicodeDecodeError as exc:
            raise BadRequest(f"{where}: BYTES element #{len(out)} is not valid UTF-8 ({exc.reason})") from exc
        offset += length
    if len(out) != count:
        raise BadRequest(f"{where}: shape needs {count} BYTES elements, the binary data has {len(out)}")
    return out


def tensor_from_raw(raw: bytes, datatype: str, shape: Sequence[int], where: str) -> Any:
    """A flat numpy array (numeric, BOOL) or list of ``str`` (BYTES) from raw tensor bytes.

    Raises:
        BadRequest: the byte count does not match shape x datatype, or the datatype is unknown.
    """
    count = _element_count(shape, where)
    if datatype == "BYTES":
        return decode_bytes_elements(raw, count, where)
    dtype = NUMPY_DTYPES.get(datatype)
    if dtype is None:
        raise BadRequest(f"{where}: unknown datatype {datatype!r}")
    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise BadRequest(
            f"{where}: shape {list(shape)} of {datatype} needs {expected} bytes, the binary data has {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype)


def decode_request(body: bytes, header_length: int) -> Dict[str, Any]:
    """The JSON body of a binary request, with every binary input's values in its ``data``.

    Raises:
        BadRequest: malformed JSON header or binary framing, naming the input.
    """
    try:
        parsed = orjson.loads(body[:header_length])
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON header (first {header_length} bytes): {exc}") from exc
    if not isinstance(parsed, dict):
        raise BadRequest('the v2 request header must be a JSON object {"inputs": [...]}')
    inputs = parsed.get("inputs")
    offset = header_length
    total = len(body)
    if isinstance(inputs, list):
        for j, item in enumerate(inputs):
            if not isinstance(item, dict):
                continue  # the JSON decoder names it
            params = item.get("parameters")
            size = params.get("binary_data_size") if isinstance(params, dict) else None
            if size is None:
                continue
            name = item.get("name")
            where = f"input {name!r}" if isinstance(name, str) else f"inputs[{j}]"
            if "data" in item:
                raise BadRequest(f"{where}: has both 'data' and parameters.binary_data_size; send one")
            if type(size) is not int or size < 0:
                raise BadRequest(f"{where}: binary_data_size must be a non-negative integer, got {size!r}")
            if offset + size > total:
                raise BadRequest(
                    f"{where}: binary_data_size {size} runs past the end of the body "
                    f"({total - offset} bytes left after the header and earlier inputs)"
                )
            shape, datatype = item.get("shape"), item.get("datatype")
            if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
                raise BadRequest(f"{where}: 'shape' must be a list of non-negative integers, got {shape!r}")
            if not isinstance(datatype, str):
                raise BadRequest(f"{where}: unknown datatype {datatype!r}")
            item["data"] = tensor_from_raw(body[offset : offset + size], datatype, shape, where)
            offset += size
    if offset != total:
        raise BadRequest(
            f"the body has {total - offset} bytes after the JSON header and the binary inputs it announces"
        )
    return parsed


def wants_binary_outputs(body: Dict[str, Any]) -> Dict[str, bool]:
    """Output name -> binary, from ``parameters.binary_data_output`` and per-output ``parameters.binary_data``."""
    params = body.get("parameters")
    default = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    chosen: Dict[str, bool] = {}
    outputs = body.get("outputs")
    if isinstance(outputs, list):
        for item in outputs:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                p = item.get("parameters")
                chosen[item["name"]] = bool(p.get("binary_data", default)) if isinstance(p, dict) else default
    chosen["*"] = default
    return chosen


def requested_binary(body: Dict[str, Any]) -> bool:
    """Whether any output of this request is to be binary."""
    return any(wants_binary_outputs(body).values())


def encode_response(response: Dict[str, Any], binary: Dict[str, bool]) -> Tuple[bytes, Optional[int]]:
    """The response bytes and, when some output is binary, the JSON header length.

    ``response`` is :meth:`RequestCodec.encode_v2`'s dict (``data`` as numpy arrays).
    """
    raw: List[bytes] = []
    for output in response["outputs"]:
        if binary.get(output["name"], binary.get("*", False)):
            data = np.ascontiguousarray(output.pop("data"), dtype=NUMPY_DTYPES[output["datatype"]])
            chunk = data.tobytes()
            output["parameters"] = {"binary_data_size": len(chunk)}
            raw.append(chunk)
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not raw:
        return header, None
    return b"".join([header, *raw]), len(header)
