"""The papers' datasets (CREMA-D, Kinetics-Sounds, Twitter2015, Sarcasm, NVGesture, DVM, SUN Attribute,
CelebA) on the file-backed data layer.

Each module registers a dataset builder ``<name>(root, ...)`` in :data:`mmbalance.data.DATASETS` that
reads the dataset's native layout under ``root`` (after ``mmbalance prepare <name> --root PATH`` where the
paper preprocesses offline), validates it — every missing or malformed file is named, with its line in the
index file that lists it — and returns a :class:`~mmbalance.data.manifest.ManifestDataset` whose split
column holds the papers' train/val/test split. ``recipes/<name>/<method>.yaml`` give the papers' settings;
docs/datasets.md says how to obtain and lay out each dataset.
"""

from mmbalance.data.papers import celeba as _celeba  # noqa: F401  (registers)
from mmbalance.data.papers import cremad as _cremad  # noqa: F401  (registers)
from mmbalance.data.papers import dvm as _dvm  # noqa: F401  (registers the dataset and its prepare step)
from mmbalance.data.papers import kinetics_sounds as _kinetics_sounds  # noqa: F401  (registers)
from mmbalance.data.papers import nvgesture as _nvgesture  # noqa: F401  (registers)
from mmbalance.data.papers import sarcasm as _sarcasm  # noqa: F401  (registers)
from mmbalance.data.papers import sun_attribute as _sun_attribute  # noqa: F401  (registers)
from mmbalance.data.papers import twitter2015 as _twitter2015  # noqa: F401  (registers)
