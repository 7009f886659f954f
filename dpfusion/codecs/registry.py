"""Base codecs by name: one registration gives a codec its builder, its container id and its rate kind.

The shape of CompressAI's ``@register_model(name)``, but for a *ready* codec: the builder turns a
quality and an optional checkpoint into weights, and the container id is the byte a ``.dpf`` file
names it by. Adding an architecture is one call, in or outside this package::

    @register_codec("mbt2018-mean-small", bitstream_id=64)
    def build(quality: float | None, checkpoint: Path | None) -> tuple[CompressionModel, float]:
        return my_model_from(checkpoint), float(quality)

Everything the CLI lists (``--model`` choices, error messages) comes from :func:`codec_names`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpfusion.errors import DPFusionError

Builder = Callable[[float | None, Path | None], tuple[Any, float]]
"""``(quality or None, checkpoint or None) -> (CompressionModel, the quality it runs at)``."""

MAX_BITSTREAM_ID = 255


@dataclass(frozen=True)
class CodecSpec:
    """A registered codec: what ``load_codec`` builds and what the container writes for it."""

    name: str
    build: Builder
    bitstream_id: int
    variable_rate: bool = False
    aliases: tuple[str, ...] = ()
    summary: str = ""


_CODECS: dict[str, CodecSpec] = {}
_ALIASES: dict[str, str] = {}


def register_codec(
    name: str, *, bitstream_id: int, variable_rate: bool = False, aliases: tuple[str, ...] = (), summary: str = ""
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` as codec ``name``; ids are forever (files name codecs by them)."""

    def decorator(builder: Builder) -> Builder:
        if not 0 <= bitstream_id <= MAX_BITSTREAM_ID:
            raise DPFusionError(f"codec {name!r}: bitstream id {bitstream_id} is not a byte")
        for spec in _CODECS.values():
            if spec.name != name and spec.bitstream_id == bitstream_id:
                raise DPFusionError(f"codec {name!r}: bitstream id {bitstream_id} is {spec.name!r}'s")
        taken = (set(_CODECS) | set(_ALIASES)) & {*aliases} - {name}
        if name in _ALIASES or taken:
            raise DPFusionError(f"codec {name!r}: name {sorted(taken) or [name]} already taken")
        _CODECS[name] = CodecSpec(name, builder, bitstream_id, variable_rate, tuple(aliases), summary)
        _ALIASES.update(dict.fromkeys(aliases, name))
        return builder

    return decorator


def unregister_codec(name: str) -> None:
    """Forget a codec (tests and plug-ins that registered one for a while)."""
    spec = _CODECS.pop(name, None)
    for alias in spec.aliases if spec else ():
        _ALIASES.pop(alias, None)


def codec_names(with_aliases: bool = False) -> tuple[str, ...]:
    """Registered codec names in container-id order (the order the CLI lists them)."""
    names = tuple(spec.name for spec in sorted(_CODECS.values(), key=lambda s: s.bitstream_id))
    return names + tuple(_ALIASES) if with_aliases else names


def codec_spec(name: str) -> CodecSpec:
    """The registration of ``name`` (or of the codec it is an alias of)."""
    spec = _CODECS.get(_ALIASES.get(name, name))
    if spec is None:
        raise DPFusionError(f"unknown codec {name!r}; choose from {', '.join(codec_names())}")
    return spec


def codec_for_id(bitstream_id: int) -> CodecSpec | None:
    """The codec a container byte names, or None for an id nothing registered."""
    return next((spec for spec in _CODECS.values() if spec.bitstream_id == bitstream_id), None)
