"""The .pth files the Rust crate writes, read the way `torch.load(weights_only=True)` reads them.

The standard library cannot run PyTorch, so this test emulates torch's weights-only
unpickler (`torch/_weights_only_unpickler.py`): the pickle may use only the opcodes that
unpickler implements and name only the globals it allows, and it must build an
`OrderedDict` of tensors whose storages are records of the zip archive. Each tensor is then
checked against the values it must hold.

`cargo test --test checkpoint writes_interchange_file` writes the files under
`target/interchange/`; the emulation is first checked on a file PyTorch itself wrote.
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import pickletools
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# The opcodes torch's weights-only unpickler implements (any other one is an error there).
WEIGHTS_ONLY_OPCODES = {
    "APPEND", "APPENDS", "BINFLOAT", "BINGET", "BININT", "BININT1", "BININT2", "BINPERSID",
    "BINPUT", "BINUNICODE", "BUILD", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_SET", "EMPTY_TUPLE",
    "GLOBAL", "LONG1", "LONG_BINGET", "LONG_BINPUT", "MARK", "NEWFALSE", "NEWOBJ", "NEWTRUE",
    "NONE", "PROTO", "REDUCE", "SETITEM", "SETITEMS", "SHORT_BINSTRING", "STOP", "TUPLE",
    "TUPLE1", "TUPLE2", "TUPLE3",
}

# Legacy storage classes (for _rebuild_tensor_v2) and their dtypes.
STORAGE_CLASSES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


def _bfloat16(raw: bytes) -> float:
    return struct.unpack("<f", b"\0\0" + raw)[0]


def _float8_e4m3fn(raw: bytes) -> float:
    bits = raw[0]
    sign = -1.0 if bits & 0x80 else 1.0
    exponent, mantissa = (bits >> 3) & 0xF, bits & 0x7
    if exponent == 0xF and mantissa == 0x7:
        return math.nan
    if exponent == 0:
        return sign * mantissa / 8 * 2.0**-6
    return sign * (1 + mantissa / 8) * 2.0 ** (exponent - 7)


def _unpacker(fmt: str):
    return lambda raw: struct.unpack("<" + fmt, raw)[0]


# dtype -> (bytes per element, decoder of one element)
DTYPES = {
    "float32": (4, _unpacker("f")), "float64": (8, _unpacker("d")),
    "float16": (2, _unpacker("e")), "bfloat16": (2, _bfloat16),
    "int64": (8, _unpacker("q")), "int32": (4, _unpacker("i")), "int16": (2, _unpacker("h")),
    "int8": (1, _unpacker("b")), "uint8": (1, _unpacker("B")), "uint32": (4, _unpacker("I")),
    "bool": (1, _unpacker("?")), "float8_e4m3fn": (1, _float8_e4m3fn),
}


@dataclass
class StorageClass:
    """`torch.FloatStorage` and friends; `dtype` is None for `torch.storage.UntypedStorage`."""

    dtype: str | None


@dataclass
class DType:
    """A `torch.<dtype>` global, the last argument of `_rebuild_tensor_v3`."""

    name: str


@dataclass
class Storage:
    dtype: str | None
    data: bytes


@dataclass
class Tensor:
    dtype: str
    shape: tuple
    stride: tuple
    offset: int
    data: bytes  # the whole storage

    def values(self) -> list:
        """The elements in row-major order, read through offset and strides."""
        size, decode = DTYPES[self.dtype]
        out, index = [], [0] * len(self.shape)
        for _ in range(math.prod(self.shape)):
            pos = self.offset + sum(i * s for i, s in zip(index, self.stride))
            out.append(decode(self.data[pos * size:(pos + 1) * size]))
            for d in reversed(range(len(index))):
                index[d] += 1
                if index[d] < self.shape[d]:
                    break
                index[d] = 0
        return out


def _rebuild_tensor(storage, offset, shape, stride, requires_grad, hooks, dtype=None, *metadata):
    assert isinstance(storage, Storage), storage
    assert requires_grad is False and hooks == collections.OrderedDict()
    name = dtype.name if isinstance(dtype, DType) else storage.dtype
    assert name is not None, "an untyped storage needs _rebuild_tensor_v3's dtype"
    size = DTYPES[name][0]
    extent = offset + sum((n - 1) * s for n, s in zip(shape, stride)) + 1
    assert math.prod(shape) == 0 or extent * size <= len(storage.data), "view past its storage"
    return Tensor(name, tuple(shape), tuple(stride), offset, storage.data)


class WeightsOnlyUnpickler(pickle.Unpickler):
    """Allows what torch.load(weights_only=True) allows for a state dict, and nothing else."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str, locations: set[str]):
        super().__init__(io.BytesIO(archive.read(prefix + "data.pkl")))
        self.archive, self.prefix, self.locations = archive, prefix, locations

    def find_class(self, module: str, name: str):
        full = f"{module}.{name}"
        if full == "collections.OrderedDict":
            return collections.OrderedDict
        if full in ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_CLASSES:
            return StorageClass(STORAGE_CLASSES[name])
        if full == "torch.storage.UntypedStorage":
            return StorageClass(None)
        if module == "torch" and name in DTYPES:
            return DType(name)
        raise pickle.UnpicklingError(f"{full} is not allowed by torch.load(weights_only=True)")

    def persistent_load(self, pid):
        assert isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage", pid
        _, cls, key, location, numel = pid
        assert isinstance(cls, StorageClass) and isinstance(key, str), pid
        assert location in self.locations, location
        data = self.archive.read(f"{self.prefix}data/{key}")
        nbytes = numel if cls.dtype is None else numel * DTYPES[cls.dtype][0]
        assert len(data) == nbytes, f"storage {key}: {len(data)} bytes, {nbytes} declared"
        return Storage(cls.dtype, data)


def read_pth(path: Path, locations: set[str]) -> collections.OrderedDict:
    """Checks the archive's layout and returns its state dict, as fake tensors."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        prefix = names[0].split("/")[0] + "/"
        assert all(n.startswith(prefix) for n in names), names
        for record in ("data.pkl", "version", "byteorder"):
            assert prefix + record in names, f"{record} missing from {names}"
        assert archive.read(prefix + "byteorder") == b"little"
        int(archive.read(prefix + "version"))
        raw = path.read_bytes()
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED, info.filename
            if info.filename.startswith(prefix + "data/"):
                name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
                start = info.header_offset + 30 + name_len + extra_len
                assert start % 64 == 0, f"{info.filename} starts at byte {start}"
        pickled = archive.read(prefix + "data.pkl")
        used = {op.name for op, _, _ in pickletools.genops(pickled)}
        assert used <= WEIGHTS_ONLY_OPCODES, used - WEIGHTS_ONLY_OPCODES
        state = WeightsOnlyUnpickler(archive, prefix, locations).load()
    assert type(state) is collections.OrderedDict, type(state)
    assert all(isinstance(t, Tensor) for t in state.values())
    return state


def read_safetensors(path: Path) -> dict[str, tuple[str, list, bytes]]:
    raw = path.read_bytes()
    (n,) = struct.unpack_from("<Q", raw)
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items()}


def _interchange(repo_root: Path, name: str) -> Path:
    """A file `cargo test` wrote. Run by hand without it, the test is skipped; in CI
    (CI=true), where scripts/test.sh runs cargo test first, its absence is a failure."""
    path = repo_root / "target" / "interchange" / name
    if not path.exists():
        message = f"{path} is missing: run `cargo test --test checkpoint writes_interchange_file`"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(message + " (in CI, cargo test runs before pytest and must have written it)")
        pytest.skip(message)
    return path


def test_a_missing_interchange_file_fails_in_ci_and_skips_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="is missing"):
        _interchange(tmp_path, "absent.pth")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="is missing"):
        _interchange(tmp_path, "absent.pth")


def test_the_emulation_reads_a_file_pytorch_wrote(repo_root: Path) -> None:
    state = read_pth(repo_root / "data/reference/model_with_buffer_mask2.pth", {"cuda:0"})
    assert list(state) == ["mask", "W_query.weight", "W_key.weight", "W_value.weight"]
    mask = state["mask"].values()
    assert mask[:6] == [0.0, 2.0, 2.0, 2.0, 2.0, 2.0] and state["mask"].shape == (6, 6)


def test_rust_pth_holds_the_reference_weights_in_pytorch_order(repo_root: Path) -> None:
    state = read_pth(_interchange(repo_root, "seed123_with_buffer_from_rust.pth"), {"cpu"})
    reference = read_safetensors(repo_root / "data/reference/seed123_with_buffer.safetensors")
    assert list(state) == ["mask", "W_query.weight", "W_key.weight", "W_value.weight"]
    for key, tensor in state.items():
        dtype, shape, data = reference[key]
        assert (tensor.dtype, list(tensor.shape)) == ("float32", shape) and dtype == "F32"
        assert tensor.stride == (shape[1], 1) and tensor.offset == 0
        assert tensor.data == data, key
    assert state["mask"].values()[:6] == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_rust_pth_holds_every_dtype(repo_root: Path) -> None:
    state = read_pth(_interchange(repo_root, "dtypes_from_rust.pth"), {"cpu"})
    expected = {
        "u8": "uint8", "u32": "uint32", "i16": "int16", "i32": "int32", "i64": "int64",
        "bf16": "bfloat16", "f16": "float16", "f32": "float32", "f64": "float64",
        "f8e4m3": "float8_e4m3fn",
    }
    assert list(state) == [*expected, "scalar", "empty"]
    for key, dtype in expected.items():
        tensor = state[key]
        assert (tensor.dtype, tensor.shape, tensor.stride) == (dtype, (2, 3), (3, 1)), key
        assert tensor.values() == [0, 1, 2, 3, 4, 5], key
    assert (state["scalar"].shape, state["scalar"].values()) == ((), [2.5])
    assert (state["empty"].shape, state["empty"].values()) == ((0, 4), [])
