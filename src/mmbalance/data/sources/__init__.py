"""Sources: how one modality of a manifest row is read (see :class:`~mmbalance.data.sources.base.Source`)."""

from mmbalance.data.sources.base import Source
from mmbalance.data.sources.columns import ColumnsSource
from mmbalance.data.sources.files import AudioSource, FeaturesSource, ImageSource
from mmbalance.data.sources.frames import FramesSource
from mmbalance.data.sources.text import TextSource

SOURCES: dict[str, type[Source]] = {
    cls.kind: cls
    for cls in (ImageSource, FramesSource, AudioSource, TextSource, ColumnsSource, FeaturesSource)
}

__all__ = [
    "SOURCES",
    "AudioSource",
    "ColumnsSource",
    "FeaturesSource",
    "FramesSource",
    "ImageSource",
    "Source",
    "TextSource",
]
