"""The text source's ``tokenizer: DIR`` option: rows in the ``hf_text`` format from a local Hugging Face
tokenizer (a tiny random BERT saved to a temporary directory; nothing is downloaded)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from mmbalance.data.manifest import ManifestDataset
from mmbalance.data.table import read_table
from mmbalance.errors import ConfigError
from mmbalance.models import build_encoder
from mmbalance.text import hf_encode

transformers = pytest.importorskip("transformers")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "ran", "fast"]
TEXTS = ["The cat sat on the mat", None, "a dog ran fast", "the dog"]


def tiny_bert(folder: Path) -> Path:
    """A random BERT (hidden 16, 1 layer) and its WordPiece tokenizer saved under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    transformers.BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


def dataset(tokenizer: object) -> ManifestDataset:
    table = read_table({"notes": TEXTS, "label": ["a", "b", "a", "b"]})
    spec = {"text": {"kind": "text", "column": "notes", "max_length": 8, "tokenizer": tokenizer}}
    ds = ManifestDataset(table, spec)
    ds.fit(torch.arange(4))
    return ds


def test_rows_are_the_hf_encoding_and_the_default_encoder_reads_them(tmp_path: Path) -> None:
    bert = tiny_bert(tmp_path / "bert")
    ds = dataset(str(bert))
    assert ds.input_shape("text") == (2, 8)
    x, present = ds.sources["text"].read(0)
    assert x.dtype == torch.long and present
    assert torch.equal(x, hf_encode([TEXTS[0]], bert, 8)[0])
    empty, present = ds.sources["text"].read(1)
    assert not present and torch.equal(empty, torch.zeros(2, 8, dtype=torch.long))
    assert ds.default_encoders["text"] == {"name": "hf_text", "path": str(bert)}
    enc = build_encoder("hf_text", (2, 8), 4, path=str(bert)).eval()
    batch = torch.stack([ds[i].inputs["text"] for i in range(4)])
    assert enc(batch).shape == (4, 4)
    assert ds.preprocessing()["sources"]["text"] == {"tokenizer": str(bert)}


def test_a_pickled_source_reloads_its_tokenizer(tmp_path: Path) -> None:
    ds = dataset(str(tiny_bert(tmp_path / "bert")))
    copy = pickle.loads(pickle.dumps(ds.sources["text"]))
    assert copy._hf is None and torch.equal(copy.read(2)[0], ds.sources["text"].read(2)[0])


def test_without_tokenizer_rows_are_word_ids_as_before() -> None:
    ds = dataset(None)
    assert ds.input_shape("text") == (8,) and ds.default_encoders["text"]["name"] == "text"
    assert ds.sources["text"].read(3)[0].tolist()[:3] == [2, 3, 0]  # "the" (2 rows), "dog" (2 rows)


def test_a_folder_without_a_tokenizer_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tokenizer path=.*is not a directory"):
        dataset(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no tokenizer") as err:
        dataset(str(tmp_path / "empty"))
    assert "\n" not in str(err.value)
