"""The papers' datasets (CREMA-D, Kinetics-Sounds, Twitter2015, Sarcasm, NVGesture, DVM, SUN Attribute,
CelebA) on the file-backed data layer.

Each module registers a dataset builder ``<name>(root, ...)`` in :data:`mmbalance.data.DATASETS` that
reads the dataset's native layout under ``root`` (after ``mmbalance prepare <name> --root PATH`` where the
paper preprocesses offline), validates it — every missing or malformed file is named, with its line in the
index file that lists it — and returns a :class:`~mmbalance.data.manifest.ManifestDataset` whose split
column holds the papers' train/val/test split. ``recipes/<name>/<method>.yaml`` give the papers' settings;
docs/datasets.md says how to obtain and lay out each dataset.
"""

from mmbalance.data.papers import nvgesture as _nvgesture  # noqa: F401  (registers)
