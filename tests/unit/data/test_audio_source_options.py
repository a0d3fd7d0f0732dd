"""The audio source's ``pad`` and ``log_offset`` options (the audio-visual papers' spectrogram)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from mmbalance.data.sources import AudioSource
from mmbalance.data.table import read_table
from mmbalance.errors import ConfigError


def source(tmp_path: Path, wave: np.ndarray, rate: int, **opts: object) -> AudioSource:
    soundfile.write(tmp_path / "a.wav", wave.astype(np.float32), rate, subtype="FLOAT")
    table = read_table({"sound": ["a.wav"]}, root=tmp_path)
    return AudioSource("sound", table, {"kind": "audio", "column": "sound", **opts})


def test_tile_repeats_a_short_clip_until_it_fills_the_duration(tmp_path: Path) -> None:
    clip = np.linspace(-0.5, 0.5, 400)
    opts = {"sample_rate": 1000, "duration": 1.0, "representation": "waveform"}
    tiled, present = source(tmp_path, clip, 1000, pad="tile", **opts).read(0)
    zeros, _ = source(tmp_path, clip, 1000, **opts).read(0)
    assert present and tiled.shape == zeros.shape == (1, 1000)
    np.testing.assert_allclose(tiled[0].numpy(), np.tile(clip, 3)[:1000], atol=1e-6)
    np.testing.assert_allclose(zeros[0, :400].numpy(), clip, atol=1e-6)
    assert torch.count_nonzero(zeros[0, 400:]) == 0


def test_tile_leaves_a_long_clip_and_an_empty_clip_as_zero_padding_does(tmp_path: Path) -> None:
    opts = {"sample_rate": 1000, "duration": 0.5, "representation": "waveform", "augment": False}
    long = np.sin(np.arange(900) / 7.0)
    assert torch.equal(
        source(tmp_path, long, 1000, pad="tile", **opts).read(0, train=True)[0],
        source(tmp_path, long, 1000, **opts).read(0, train=True)[0],
    )
    empty = source(tmp_path, np.zeros(0), 1000, pad="tile", **opts).read(0)[0]
    assert empty.shape == (1, 500) and torch.count_nonzero(empty) == 0


def test_log_offset_gives_log_of_magnitude_plus_offset(tmp_path: Path) -> None:
    wave = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000) * 0.3
    opts = {"sample_rate": 8000, "duration": 1.0, "n_fft": 256, "hop": 64}
    default = source(tmp_path, wave, 8000, **opts).read(0)[0]
    papers = source(tmp_path, wave, 8000, log_offset=1e-7, **opts).read(0)[0]
    magnitude = torch.expm1(default.double())
    np.testing.assert_allclose(papers.double(), torch.log(magnitude + 1e-7), atol=1e-4)
    silent = source(tmp_path, np.zeros(8000), 8000, log_offset=1e-7, **opts).read(0)[0]
    np.testing.assert_allclose(silent.numpy(), math.log(1e-7), rtol=1e-6)


@pytest.mark.parametrize(
    ("rate", "duration", "frames"), [(22050, 3.0, 188), (35400, 10.0, 1003)], ids=["cremad", "ks"]
)
def test_the_papers_stft_gives_their_spectrogram_sizes(
    tmp_path: Path, rate: int, duration: float, frames: int
) -> None:
    opts = {"sample_rate": rate, "duration": duration, "n_fft": 512, "hop": 353, "log_offset": 1e-7}
    s = source(tmp_path, np.random.default_rng(0).uniform(-1, 1, 16000), 16000, pad="tile", **opts)
    x, _ = s.read(0)
    assert s.shape == tuple(x.shape) == (1, 257, frames)
    assert x.dtype == torch.float32 and torch.isfinite(x).all()


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"pad": "wrap"}, "pad='wrap'; expected zeros or tile"),
        ({"log_offset": 0}, "log_offset=0; expected a number > 0"),
        ({"log_offset": "tiny"}, "log_offset='tiny'; expected a number > 0"),
    ],
)
def test_bad_pad_or_log_offset_is_a_one_line_error(tmp_path: Path, opts: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        source(tmp_path, np.zeros(10), 1000, **opts)
