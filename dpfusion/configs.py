"""One way to record what a saved part was built with, and one JSON shape to store it in.

Every part dpfusion saves (the gain codec, the fusion network, its synthesis adapter, the noise
schedule, the dial, a training run, the manifests of weights folders) is a ``Configurable``. Its
``config`` is the constructor arguments that rebuild it, recorded once when it is built (the shape
of diffusers' ``register_to_config``, not its code); ``from_config`` rebuilds it. On disk it is one
document, ``{"kind": "dpfusion.fusion", "schema": 2, "config": {...}}``; a configurable part inside
another's config is its own document, so every part is checked and read by the same code.

Files written before the kinds existed (schema 1: bare dicts without ``kind``) are read through
each class's ``legacy_config``; a file of an unknown kind, or of a newer schema than this copy of
dpfusion reads, is a one-line error.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from dpfusion.atomic import atomic_path
from dpfusion.errors import DPFusionError
from dpfusion.weights_io import one_line, read_json_object

SCHEMA = 2
"""The document schema this copy writes; 1 is the kind-less shape of the files shipped before it."""

KINDS: dict[str, type[Configurable]] = {}
"""Every kind this copy of dpfusion reads, filled in as the classes are defined."""

C = TypeVar("C", bound="Configurable")
F = TypeVar("F", bound=Callable[..., None])


def plain(value: Any) -> Any:
    """``value`` as JSON data: a configurable part becomes its document, tuples become lists."""
    if isinstance(value, Configurable):
        return value.document()
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


class Configurable:
    """A part that can be saved: ``config`` rebuilds it, ``document()`` / ``from_document`` store it."""

    config_kind: ClassVar[str] = ""
    config_schema: ClassVar[int] = SCHEMA
    config_parts: ClassVar[Mapping[str, type[Configurable]]] = {}
    """Arguments that are themselves configurable: stored as documents, rebuilt by ``from_config``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("config_kind"):
            KINDS[cls.config_kind] = cls

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments as JSON data (a copy: change them through ``register_to_config``)."""
        if dataclasses.is_dataclass(self):
            return {field.name: plain(getattr(self, field.name)) for field in dataclasses.fields(self)}
        return copy.deepcopy(self.__dict__.get("_recorded_config", {}))

    def register_to_config(self, **values: Any) -> None:
        """Record (or change, as attaching an adapter does) constructor arguments."""
        recorded = dict(self.__dict__.get("_recorded_config", {}))
        recorded.update({name: plain(value) for name, value in values.items()})
        self.__dict__["_recorded_config"] = recorded

    def document(self) -> dict[str, Any]:
        return {"kind": self.config_kind, "schema": self.config_schema, "config": self.config}

    @classmethod
    def from_config(cls: type[C], config: Mapping[str, Any]) -> C:
        values = dict(config)
        for name, part in cls.config_parts.items():
            if values.get(name) is not None:
                values[name] = part.from_document(values[name], f"{cls.config_kind} {name}")
        return cls(**values)

    @classmethod
    def legacy_config(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The config of a schema-1 file (no ``kind``); by default its keys are the arguments, its parts bare."""
        parts = cls.config_parts
        return {
            name: parts[name].as_document(value, f"{cls.config_kind} {name}")
            if name in parts and value is not None
            else value
            for name, value in data.items()
        }

    @classmethod
    def as_document(cls, data: Any, source: str = "config") -> dict[str, Any]:
        """``data`` (a document or a schema-1 dict) as a current document of this kind, without building it."""
        return {"kind": cls.config_kind, "schema": cls.config_schema, "config": cls.read_config(data, source)}

    @classmethod
    def read_config(cls, data: Any, source: str = "config") -> dict[str, Any]:
        """The current config held by a document (or a schema-1 dict), checked to be of this kind."""
        if not isinstance(data, dict):
            raise DPFusionError(f"{source}: not a {cls.config_kind} config (a JSON object was expected)")
        if "kind" not in data:
            return cls.legacy_config(data)
        kind, schema, config = data["kind"], data.get("schema"), data.get("config")
        if kind != cls.config_kind:
            what = "a" if kind in KINDS else "an unknown config kind,"
            raise DPFusionError(f"{source}: {what} {kind!r}, not a {cls.config_kind} config")
        if type(schema) is not int or schema < SCHEMA:
            raise DPFusionError(f"{source}: {kind} schema {schema!r} is not a schema this dpfusion reads")
        if schema > cls.config_schema:
            raise DPFusionError(
                f"{source}: {kind} schema {schema} is newer than this dpfusion reads ({cls.config_schema});"
                " upgrade dpfusion"
            )
        if not isinstance(config, dict):
            raise DPFusionError(f"{source}: {kind} document has no config object")
        return config

    @classmethod
    def from_document(cls: type[C], data: Any, source: str = "config") -> C:
        config = cls.read_config(data, source)
        try:
            return cls.from_config(config)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise DPFusionError(f"{source}: not a valid {cls.config_kind} config ({one_line(exc)})") from None

    def save_config(self, path: str | Path) -> Path:
        """Write ``document()`` atomically as JSON."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.document(), indent=2) + "\n")
        return path

    @classmethod
    def load_config(cls: type[C], path: str | Path) -> C:
        path = Path(path)
        return cls.from_document(read_json_object(path, f"{cls.config_kind} config"), str(path))


def register_to_config(init: F) -> F:
    """Decorate ``__init__``: its arguments (defaults filled in) become the object's config, once.

    They are recorded before the body runs, so the body may change one through the mechanism.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def recording(self: Configurable, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.register_to_config(**{name: value for name, value in list(bound.arguments.items())[1:]})
        init(self, *args, **kwargs)

    return recording  # type: ignore[return-value]
