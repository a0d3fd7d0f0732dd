"""Sources that read one file per row: images (Pillow), audio (soundfile) and ``.npy`` feature arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from mmbalance.data.sources.base import Source
from mmbalance.errors import ConfigError, DataError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _pair(name: str, value: Any) -> tuple[int, int]:
    size = (value, value) if isinstance(value, int) else tuple(value)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ConfigError(f"{name}={value!r}; expected a positive integer or [height, width]")
    return size  # type: ignore[return-value]


class ImageSource(Source):
    """An image file per row (any format Pillow reads), as ``float32[C, H, W]``: resized to ``size``,
    ``channels`` 3 (RGB) or 1 (grey), scaled to [0, 1] and normalised with ImageNet's channel statistics
    (``normalize: imagenet``, what pretrained ResNets expect) or not (``none``). With ``augment`` the
    training split sees a random crop of 87.5-100 % of each side, resized back, and a horizontal flip with
    probability 1/2; evaluation always sees the whole image."""

    kind = "image"
    options: ClassVar[dict[str, Any]] = {"size": 64, "channels": 3, "normalize": "imagenet", "augment": True}

    def __init__(self, name: str, table: Any, spec: dict[str, Any]) -> None:
        super().__init__(name, table, spec)
        self.size = _pair(f"modality {name!r} size", self.opts["size"])
        if self.opts["channels"] not in (1, 3):
            raise ConfigError(f"modality {name!r} channels={self.opts['channels']!r}; expected 1 or 3")
        if self.opts["normalize"] not in ("imagenet", "none"):
            raise ConfigError(
                f"modality {name!r} normalize={self.opts['normalize']!r}; expected imagenet or none"
            )

    def check(self) -> None:
        self.check_files(self.column)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.opts["channels"], *self.size)

    def read(
        self, row: int, train: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, bool]:
        path = self.file_of(row, self.column)
        if path is None:
            return self.fill(), False
        box = self.draw_augmentation(generator) if train and self.opts["augment"] else None
        try:
            return self.load(path, box), True
        except (OSError, ValueError) as exc:
            raise self.unreadable(row, self.column, exc) from exc

    def draw_augmentation(self, g: torch.Generator | None) -> list[float]:
        """One augmentation (four crop draws and a flip draw in [0, 1)), applied alike to a clip's frames."""
        return torch.rand(5, generator=g).tolist()

    def load(self, path: Any, box: list[float] | None) -> Tensor:
        """One image file as a normalised ``float32[C, H, W]``, augmented by ``box`` unless ``None``."""
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB" if self.opts["channels"] == 3 else "L")
            if box is not None:
                im = self._augment(im, box)
            im = im.resize((self.size[1], self.size[0]), Image.BILINEAR)
            x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)
        x = x.permute(2, 0, 1) if x.dim() == 3 else x[None]
        if self.opts["normalize"] == "imagenet":
            mean = IMAGENET_MEAN if self.opts["channels"] == 3 else (sum(IMAGENET_MEAN) / 3,)
            std = IMAGENET_STD if self.opts["channels"] == 3 else (sum(IMAGENET_STD) / 3,)
            x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
        return x.contiguous()

    def _augment(self, im: Any, r: list[float]) -> Any:
        w, h = im.size
        cw, ch = max(1, round(w * (0.875 + 0.125 * r[0]))), max(1, round(h * (0.875 + 0.125 * r[1])))
        left, top = round((w - cw) * r[2]), round((h - ch) * r[3])
        im = im.crop((left, top, left + cw, top + ch))
        if r[4] < 0.5:
            from PIL import Image

            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        return im

    def default_encoder(self) -> dict[str, Any]:
        return {"name": "cnn"}


class AudioSource(Source):
    """An audio file per row (any format soundfile reads: wav, flac, ogg...): mixed to mono, resampled to
    ``sample_rate`` whatever the file's own rate, cut to ``duration`` seconds (the start; with ``augment``
    the training split sees a random window of a longer clip), and returned as the waveform
    ``float32[1, T]`` or as a log-magnitude spectrogram ``float32[1, n_fft/2+1, frames]`` (``torch.stft``,
    centred, Hann window of ``n_fft``, hop ``hop``; ``log(log_offset + |X|)``, so the default 1.0 gives
    ``log(1 + |X|)`` and the audio-visual papers' 1e-7 gives ``log(|X| + 1e-7)``).

    A clip shorter than ``duration`` is zero-padded (``pad: zeros``) or repeated end to end until it fills
    ``duration`` (``pad: tile``, what the CREMA-D and Kinetics-Sounds pipelines of the papers do); an
    empty clip is all zeros either way."""

    kind = "audio"
    options: ClassVar[dict[str, Any]] = {
        "sample_rate": 16000,
        "duration": 3.0,
        "representation": "spectrogram",
        "n_fft": 512,
        "hop": 160,
        "augment": True,
        "pad": "zeros",
        "log_offset": 1.0,
    }

    def __init__(self, name: str, table: Any, spec: dict[str, Any]) -> None:
        super().__init__(name, table, spec)
        if self.opts["representation"] not in ("spectrogram", "waveform"):
            raise ConfigError(
                f"modality {name!r} representation={self.opts['representation']!r}; "
                "expected spectrogram or waveform"
            )
        if self.opts["pad"] not in ("zeros", "tile"):
            raise ConfigError(f"modality {name!r} pad={self.opts['pad']!r}; expected zeros or tile")
        offset = self.opts["log_offset"]
        if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not offset > 0:
            raise ConfigError(f"modality {name!r} log_offset={offset!r}; expected a number > 0")
        self.samples = round(float(self.opts["duration"]) * int(self.opts["sample_rate"]))
        if self.samples < 1:
            raise ConfigError(f"modality {name!r} duration={self.opts['duration']!r}; expected > 0 seconds")

    def check(self) -> None:
        self.check_files(self.column)

    @property
    def shape(self) -> tuple[int, ...]:
        if self.opts["representation"] == "waveform":
            return (1, self.samples)
        return (1, int(self.opts["n_fft"]) // 2 + 1, self.samples // int(self.opts["hop"]) + 1)

    def read(
        self, row: int, train: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, bool]:
        import soundfile

        path = self.file_of(row, self.column)
        if path is None:
            return self.fill(), False
        try:
            wave, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (OSError, RuntimeError, ValueError, soundfile.LibsndfileError) as exc:
            raise self.unreadable(row, self.column, exc) from exc
        x = resample(wave.mean(axis=1), int(rate), int(self.opts["sample_rate"]))
        start = 0
        if train and self.opts["augment"] and len(x) > self.samples:
            start = int(torch.randint(len(x) - self.samples + 1, (1,), generator=generator))
        x = x[start : start + self.samples]
        if self.opts["pad"] == "tile" and 0 < len(x) < self.samples:
            x = np.tile(x, -(-self.samples // len(x)))[: self.samples]
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        x = torch.nn.functional.pad(x, (0, self.samples - len(x)))
        if self.opts["representation"] == "waveform":
            return x[None], True
        n_fft, hop = int(self.opts["n_fft"]), int(self.opts["hop"])
        spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
        offset = float(self.opts["log_offset"])
        return (torch.log1p(spec) if offset == 1.0 else torch.log(spec + offset))[None], True

    def default_encoder(self) -> dict[str, Any]:
        return {"name": "cnn"} if self.opts["representation"] == "spectrogram" else {"name": "mlp"}


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``x`` from ``rate`` to ``target`` samples per second (polyphase filtering; unchanged when equal)."""
    if rate == target:
        return x
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(x, target // g, rate // g).astype(np.float32)


class FeaturesSource(Source):
    """A ``.npy`` array per row (precomputed features), as ``float32`` of the shape the first readable row
    has; every row must have that shape."""

    kind = "features"
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, name: str, table: Any, spec: dict[str, Any]) -> None:
        super().__init__(name, table, spec)
        self.shape_: list[int] | None = None

    def check(self) -> None:
        self.check_files(self.column)

    def fit(self, rows: Sequence[int]) -> None:
        for i in rows:
            if self.cells(self.column)[i] is not None:
                self.shape_ = list(self._load(i).shape)
                return
        raise DataError(f"{self.table.source}: column {self.column!r} is empty in every training row")

    def state(self) -> dict[str, Any]:
        return {"shape": self.shape_}

    def load_state(self, state: dict[str, Any]) -> None:
        self.shape_ = list(state["shape"])

    @property
    def shape(self) -> tuple[int, ...]:
        if self.shape_ is None:
            raise ConfigError(f"modality {self.name!r}: the features source is not fitted")
        return tuple(self.shape_)

    def _load(self, row: int) -> Tensor:
        try:
            arr = np.load(self.file_of(row, self.column), allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise self.unreadable(row, self.column, exc) from exc
        return torch.from_numpy(np.asarray(arr, dtype=np.float32))

    def read(
        self, row: int, train: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, bool]:
        if self.cells(self.column)[row] is None:
            return self.fill(), False
        x = self._load(row)
        if list(x.shape) != list(self.shape):
            raise DataError(
                f"{self.table.where(row, self.column)}: array of shape {tuple(x.shape)}; "
                f"expected {self.shape}"
            )
        return x, True

    def default_encoder(self) -> dict[str, Any]:
        return {"name": "mlp"}
