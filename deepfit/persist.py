"""A model file that runs no code: ``est.save(path)`` and ``deepfit.load(path)``.

Pickle (and joblib) files run whatever they hold when they are loaded: open them only if
you trust where they come from. A deepfit model file holds only data:

- one ``torch.save`` of a dict of strings and tensors, read back with
  ``torch.load(weights_only=True)``, which builds tensors and nothing else;
- in it, a JSON description of the fitted estimator (its parameters and fitted
  attributes, each value tagged with its kind: numbers, strings, lists, dicts, numpy
  arrays, pandas indexes and frames, sparse matrices, time zones, and objects of
  deepfit's own classes, rebuilt field by field) and the tensors it points to;
- the networks as state dicts: the estimator rebuilds its network from its fitted
  attributes (``_build_module``) and loads the weights into it.

Loading checks, before it builds anything, and refuses with a ``ValueError`` naming the
file and the field at fault:

- the format and its version;
- a SHA-256 checksum of the description and of every tensor (a flipped bit, a truncated
  or edited file);
- every class the file names against an exact allow-list: the estimators and the value
  types the format writes (classes marked :func:`persistable` where they are defined,
  and scikit-learn's ``FrozenEstimator``), never a class a deepfit module merely imports;
- each estimator's fields against its class: every parameter present and none unknown,
  each parameter within its declared constraints, and a fitted estimator's fitted
  attributes (``_fitted_attributes``) all present.

User callbacks are code, so ``save`` leaves them out (with a warning). Files are written
to a temporary name and renamed into place (:func:`deepfit.files.save_torch`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from torch import nn

from deepfit.params import PACKAGES, warn

__all__ = ["FORMAT", "VERSION", "load", "persistable", "save"]

FORMAT = "deepfit-model"
# 2: checksums of the description and of every tensor. Version 1 files (no checksums)
# are still read.
VERSION = 2
_READS = (1, 2)
# The allow-list: estimator classes and value types, by their defining module's name.
_CLASSES: dict[str, type] = {}
_ALSO = "sklearn.frozen._frozen.FrozenEstimator"  # wraps a fitted language model


def persistable(cls: type, *aliases: str) -> type:
    """Class decorator: a model file may hold instances of ``cls`` (an estimator, or a
    value one holds: a fitted preprocessor, a vocabulary, a schedule). Only classes of
    deepfit's packages are accepted; subclasses are not included, each is marked.
    ``aliases``: where the class was defined before it moved, so that files written
    then still load."""
    for name in (_name(cls), *aliases):
        if name.split(".")[0] not in PACKAGES:
            raise TypeError(f"only deepfit's own classes are persistable, not {name}")
        _CLASSES[name] = cls
    return cls


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _allowed(cls: type) -> bool:
    return _CLASSES.get(_name(cls)) is cls or _name(cls) == _ALSO


def _class(name: str, path: Path) -> type:
    """The class ``name`` when it is on the allow-list. Only the module a deepfit
    class would be defined in is imported (deepfit's own code), and the name must be
    where the class is defined (or was, before it moved: :func:`persistable`'s
    aliases): a name a deepfit module merely imports is refused."""
    if name == _ALSO:
        from sklearn.frozen import FrozenEstimator

        return FrozenEstimator
    module = name.rpartition(".")[0]
    if module.split(".")[0] in PACKAGES:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    if name not in _CLASSES:
        raise ValueError(f"{path}: refers to class {name!r}, which deepfit never loads")
    return _CLASSES[name]


def _digest(t: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes."""
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _check_fields(cls: type, fields: dict[str, Any], path: Path) -> None:
    """A scikit-learn estimator's fields against its class, before it is built: every
    parameter there and none unknown (a field is a parameter, or a fitted or private
    attribute: a name ending or starting with ``_``)."""
    if not hasattr(cls, "_get_param_names"):
        return
    params = cls._get_param_names()
    missing = [p for p in params if p not in fields]
    unknown = [
        k
        for k in fields
        if k not in params and not (k.endswith("_") or k.startswith("_"))
    ]
    if missing or unknown:
        raise ValueError(
            f"{path}: does not describe a {cls.__name__}: "
            + "; ".join(
                f"{what} field(s) {names}"
                for what, names in (("missing", missing), ("unknown", unknown))
                if names
            )
        )


class _Writer:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def tensor(self, t: torch.Tensor) -> str:
        key = f"t{len(self.tensors)}"
        self.tensors[key] = t.detach().cpu().contiguous()
        return key

    def encode(self, obj: Any, where: str) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            f = float(obj)
            return f if math.isfinite(f) else {"float": repr(f)}
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, torch.Tensor):
            return {"tensor": self.tensor(obj)}
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind in "biufc" and obj.dtype.kind != "c":
                return {
                    # A copy: torch takes no read-only arrays (Arrow-backed ones).
                    "ndarray": self.tensor(torch.from_numpy(np.array(obj, order="C"))),
                    "dtype": obj.dtype.str,
                }
            return {
                "objects": [self.encode(v, where) for v in obj.ravel().tolist()],
                "shape": list(obj.shape),
            }
        if isinstance(obj, pd.Index):
            return {
                "index": [self.encode(v, where) for v in obj.tolist()],
                "dtype": str(obj.dtype),
            }
        if isinstance(obj, pd.DataFrame):
            if not obj.columns.is_unique:
                raise TypeError(f"{where}: a frame with duplicate column names")
            return {
                "frame": {
                    "columns": self.encode(obj.columns, f"{where}.columns"),
                    "data": [
                        self.encode(obj[c].to_numpy(), f"{where}[{c!r}]")
                        for c in obj.columns
                    ],
                    "index": self.encode(obj.index, f"{where}.index"),
                }
            }
        if isinstance(obj, pd.Series):
            return {
                "series": self.encode(obj.to_numpy(), where),
                "index": self.encode(obj.index, where),
                "name": self.encode(obj.name, where),
            }
        if isinstance(obj, sparse.spmatrix | sparse.sparray):
            csr = sparse.csr_matrix(obj)
            return {
                "csr": [
                    self.encode(a, where) for a in (csr.data, csr.indices, csr.indptr)
                ],
                "shape": list(csr.shape),
            }
        if isinstance(obj, (list, tuple)):
            kind = "list" if isinstance(obj, list) else "tuple"
            return {kind: [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            return {
                "dict": [
                    [self.encode(k, where), self.encode(v, f"{where}[{k!r}]")]
                    for k, v in obj.items()
                ]
            }
        if isinstance(obj, slice):
            return {
                "slice": [
                    self.encode(v, where) for v in (obj.start, obj.stop, obj.step)
                ]
            }
        if isinstance(obj, Path):
            return {"path": str(obj)}
        if isinstance(obj, datetime.tzinfo):
            return {"tz": str(obj)}
        if isinstance(obj, (datetime.datetime, np.datetime64)):  # pd.Timestamp too
            ts = pd.Timestamp(obj)
            return {"timestamp": [int(ts.value), self.encode(ts.tzinfo, where)]}
        if isinstance(obj, (datetime.timedelta, np.timedelta64)):
            return {"timedelta": int(pd.Timedelta(obj).value)}
        if isinstance(obj, (datetime.date, datetime.time)):
            return {type(obj).__name__: obj.isoformat()}
        if isinstance(obj, nn.Module):
            raise TypeError(f"{where}: a network outside module_ cannot be saved")
        name = _name(type(obj))
        if _allowed(type(obj)) and (
            dataclasses.is_dataclass(obj) or hasattr(obj, "__dict__")
        ):
            state = obj.__getstate__() if hasattr(obj, "__getstate__") else vars(obj)
            if not isinstance(state, dict):
                state = vars(obj)
            return {"object": name, "state": self.estimator_state(obj, state, where)}
        raise TypeError(
            f"{where} holds a {type(obj).__name__}, which a deepfit model file cannot "
            "hold; pickle the estimator instead (a file only for sources you trust)"
        )

    def estimator_state(self, obj: Any, state: dict[str, Any], where: str) -> Any:
        out = []
        for k, v in state.items():
            if k == "callbacks" and v:
                warn(
                    f"{where}.callbacks: callbacks are code and are not saved; the loaded "
                    "estimator has callbacks=None",
                    UserWarning,
                )
                v = None
            if k == "module_":  # rebuilt by the estimator, then its weights loaded
                module = obj.__dict__[k]
                weights = {n: self.tensor(t) for n, t in module.state_dict().items()}
                out.append([k, {"network": weights}])
                continue
            if type(v).__name__ == "_PackedModule" or isinstance(v, torch.Generator):
                continue
            out.append([k, self.encode(v, f"{where}.{k}")])
        return out


class _Reader:
    def __init__(self, tensors: dict[str, torch.Tensor], path: Path) -> None:
        self.tensors, self.path = tensors, path

    def tensor(self, key: str) -> torch.Tensor:
        if key not in self.tensors:
            raise ValueError(f"{self.path}: tensor {key!r} is missing")
        return self.tensors[key]

    def decode(self, obj: Any) -> Any:
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, list):  # only inside tagged values
            raise ValueError(f"{self.path}: an untagged list")
        if not isinstance(obj, dict) or len(obj) == 0:
            raise ValueError(f"{self.path}: an unreadable value {obj!r:.80}")
        tag = next(iter(obj))
        v = obj[tag]
        if tag == "float":
            return float(v)
        if tag == "tensor":
            return self.tensor(v).clone()
        if tag == "ndarray":
            return self.tensor(v).numpy().astype(np.dtype(obj["dtype"]), copy=True)
        if tag == "objects":
            arr = np.empty(len(v), dtype=object)
            arr[:] = [self.decode(x) for x in v]
            return arr.reshape(obj["shape"])
        if tag == "index":
            return pd.Index([self.decode(x) for x in v], dtype=obj["dtype"])
        if tag == "frame":
            cols = v["columns"]  # an index; a list of names in version 1 files
            cols = (
                self.decode(cols)
                if isinstance(cols, dict)
                else [self.decode(c) for c in cols]
            )
            data = [self.decode(d) for d in v["data"]]
            index = self.decode(v["index"]) if "index" in v else None  # version 1
            frame = pd.DataFrame(dict(zip(cols, data, strict=True)), columns=cols)
            frame.columns = cols  # their dtype too (an empty frame's RangeIndex)
            return frame if index is None else frame.set_axis(index)
        if tag == "series":
            return pd.Series(
                self.decode(v),
                index=self.decode(obj["index"]),
                name=self.decode(obj["name"]),
            )
        if tag == "csr":
            data, indices, indptr = (self.decode(x) for x in v)
            return sparse.csr_matrix((data, indices, indptr), shape=tuple(obj["shape"]))
        if tag in ("list", "tuple"):
            items = [self.decode(x) for x in v]
            return items if tag == "list" else tuple(items)
        if tag == "dict":
            return {_hashable(self.decode(k)): self.decode(x) for k, x in v}
        if tag == "slice":
            return slice(*(self.decode(x) for x in v))
        if tag == "path":
            return Path(v)
        if tag == "tz":
            return pd.DatetimeTZDtype(tz=v).tz
        if tag == "timestamp":
            return pd.Timestamp(v[0], tz=self.decode(v[1]))
        if tag == "timedelta":
            return pd.Timedelta(v)
        if tag == "date":
            return datetime.date.fromisoformat(v)
        if tag == "time":
            return datetime.time.fromisoformat(v)
        if tag == "object":
            return self.build(_class(v, self.path), obj["state"])
        raise ValueError(f"{self.path}: unknown value tag {tag!r}")

    def build(self, cls: type, state: list[Any]) -> Any:
        out = cls.__new__(cls)
        network = None
        fields: dict[str, Any] = {}
        for k, v in state:
            if isinstance(v, dict) and "network" in v:
                network = {n: self.tensor(t) for n, t in v["network"].items()}
            else:
                fields[k] = self.decode(v)
        _check_fields(cls, fields, self.path)
        if hasattr(out, "__setstate__") and not dataclasses.is_dataclass(out):
            out.__setstate__(fields)
        else:
            out.__dict__.update(fields)
        check = getattr(out, "_check_loaded", None)
        if check is not None:
            try:
                check(network is not None)
            except ValueError as err:
                raise ValueError(f"{self.path}: {err}") from err
        if network is not None:
            try:
                with torch.random.fork_rng():
                    module = out._build_module()
            except Exception as err:  # fields that passed the checks yet cannot build
                raise ValueError(
                    f"{self.path}: cannot build the {cls.__name__}'s network from its "
                    f"fields ({type(err).__name__}: {err})"
                ) from err
            try:
                module.load_state_dict(network)
            except RuntimeError as err:
                raise ValueError(f"{self.path}: the weights do not fit: {err}") from err
            module.eval()
            out.module_ = module
        return out


def _verify(
    path: Path, text: str, digest: Any, meta: dict, tensors: dict[str, torch.Tensor]
) -> None:
    """Refuse a file whose description or tensors do not match their checksums."""
    if digest != hashlib.sha256(text.encode()).hexdigest():
        raise ValueError(
            f"{path}: the description does not match its checksum (the file is "
            "damaged or was edited)"
        )
    sums = meta.get("checksums")
    if not isinstance(sums, dict) or sums.keys() != tensors.keys():
        raise ValueError(f"{path}: its tensors are not the ones its description lists")
    for key, t in tensors.items():
        if _digest(t) != sums[key]:
            raise ValueError(
                f"{path}: tensor {key!r} does not match its checksum (the file is "
                "damaged or was edited)"
            )


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key


def save(estimator: Any, path: str | Path) -> None:
    """Write ``estimator`` (fitted or not) to ``path`` as data only (see the module)."""
    from importlib.metadata import PackageNotFoundError, version

    from deepfit.files import save_torch

    try:
        written_by = version("deepfit")
    except PackageNotFoundError:  # a checkout that was not installed
        written_by = "unknown"

    writer = _Writer()
    name = _name(type(estimator))
    if not _allowed(type(estimator)):
        raise TypeError(f"deepfit.save writes deepfit's estimators, not {name}")
    state = estimator.__getstate__()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "deepfit": written_by,
        "class": name,
        "state": writer.estimator_state(estimator, state, type(estimator).__name__),
        "checksums": {k: _digest(t) for k, t in writer.tensors.items()},
    }
    text = json.dumps(meta)
    payload = {"meta": text, "meta_sha256": hashlib.sha256(text.encode()).hexdigest()}
    save_torch({**payload, **writer.tensors}, path, "the model")


def load(path: str | Path) -> Any:
    """The estimator written by ``save`` at ``path``. Runs no code from the file: a
    file that is not a deepfit model (a pickle, another format, a newer version, a
    class outside deepfit) is refused with a ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code in it fails here, unrun
        raise ValueError(
            f"{path} is not a deepfit model file ({type(err).__name__}); pickle and "
            "joblib files are read with pickle.load, only for files you trust"
        ) from err
    if not isinstance(payload, dict) or not isinstance(payload.get("meta"), str):
        raise ValueError(f"{path} is not a deepfit model file")
    text = payload["meta"]
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: its description is not valid JSON") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a deepfit model file")
    if meta.get("version") not in _READS:
        raise ValueError(
            f"{path} is format version {meta.get('version')}; this deepfit reads "
            f"versions {list(_READS)}"
        )
    tensors = {k: v for k, v in payload.items() if k not in ("meta", "meta_sha256")}
    if not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise ValueError(f"{path}: holds something other than tensors")
    if meta["version"] >= 2:
        _verify(path, text, payload.get("meta_sha256"), meta, tensors)
    reader = _Reader(tensors, path)
    return reader.build(_class(meta["class"], path), meta["state"])
