"""The ``hf_text`` encoder and ``hf_encode`` on a tiny random BERT saved to a temporary directory (nothing is
downloaded)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from mmbalance.errors import ConfigError, MMBalanceError
from mmbalance.models import build_encoder
from mmbalance.models.text import HFTextEncoder
from mmbalance.text import hf_encode

try:
    import transformers
except ImportError:  # the optional `text` extra: tests of a model skip, the missing-package test runs
    transformers = None
needs_transformers = pytest.mark.skipif(transformers is None, reason="needs the text extra")

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    *("the", "a", "an", "cat", "cats", "dog", "dogs", "bird", "fish", "sat", "ran", "flew", "swam", "on"),
    *("in", "under", "over", "mat", "tree", "pond", "red", "blue", "green", "big", "small", "fast", "slow"),
    *("and", "or", "not", "very", "quite", "happy", "sad", "old", "young", "one", "two", "three", "four"),
    *("five", "##s", "##ed", "##ing", "##ly"),
]
TEXTS = ["The cat sat on the mat", "a very fast dog ran", "two small blue birds flew over the pond"]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random BERT (hidden 32, 2 layers, 2 heads, intermediate 37) and its WordPiece tokenizer."""
    if transformers is None:
        pytest.skip("needs the optional transformers package")
    folder = tmp_path_factory.mktemp("tiny_bert")
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + WORDS) + "\n", encoding="utf-8")
    transformers.BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(SPECIAL) + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    transformers.BertModel(config).save_pretrained(folder)
    return folder


def test_hf_encode_stacks_ids_and_attention_mask(bert_dir: Path) -> None:
    x = hf_encode(TEXTS, bert_dir, max_length=10)
    assert x.dtype == torch.long and x.shape == (3, 2, 10)
    ids, mask = x[:, 0], x[:, 1]
    assert torch.all(ids[:, 0] == SPECIAL.index("[CLS]")) and not (ids[mask == 1] == 1).any()  # no [UNK]
    real = mask.sum(1)
    assert real.tolist() == [8, 7, 10]  # [CLS] words [SEP], the last truncated to 10
    assert torch.equal(mask, (torch.arange(10) < real[:, None]).long()) and torch.all(ids[mask == 0] == 0)


def test_hf_encode_pads_at_the_end_whatever_the_tokenizer_says(bert_dir: Path, tmp_path: Path) -> None:
    assert transformers is not None
    transformers.BertTokenizerFast(str(bert_dir / "vocab.txt"), padding_side="left").save_pretrained(tmp_path)
    saved = transformers.AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert saved.padding_side == "left"
    assert torch.equal(hf_encode(TEXTS, tmp_path, max_length=12), hf_encode(TEXTS, bert_dir, max_length=12))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_output_shape_and_pretrained_weights(bert_dir: Path, pooling: str, device: str) -> None:
    enc = build_encoder("hf_text", (2, 12), 6, path=str(bert_dir), pooling=pooling).to(device)
    assert isinstance(enc, HFTextEncoder) and enc.pretrained is True and enc.out_dim == 6
    saved = transformers.AutoModel.from_pretrained(str(bert_dir), local_files_only=True).state_dict()
    for name, tensor in enc.model.state_dict().items():
        torch.testing.assert_close(tensor.cpu(), saved[name], msg=name)
    out = enc.eval()(hf_encode(TEXTS, bert_dir, max_length=12).to(device))
    assert out.shape == (3, 6) and torch.all(out >= 0) and torch.isfinite(out).all()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_appending_padding_changes_nothing(bert_dir: Path, pooling: str) -> None:
    enc = HFTextEncoder(input_shape=(2, 12), out_dim=8, path=str(bert_dir), pooling=pooling).eval()
    short, long = hf_encode(TEXTS, bert_dir, max_length=12), hf_encode(TEXTS, bert_dir, max_length=30)
    assert torch.equal(long[..., :12], short) and torch.all(long[..., 12:] == 0)
    torch.testing.assert_close(enc(long), enc(short), atol=1e-5, rtol=1e-5)


def test_cls_and_mean_pooling_differ_and_mean_is_the_masked_mean(bert_dir: Path) -> None:
    torch.manual_seed(0)
    cls = HFTextEncoder(input_shape=(2, 16), out_dim=8, path=str(bert_dir), pooling="cls").eval()
    mean = HFTextEncoder(input_shape=(2, 16), out_dim=8, path=str(bert_dir), pooling="mean").eval()
    mean.proj.load_state_dict(cls.proj.state_dict())
    x = hf_encode(TEXTS, bert_dir, max_length=16)
    assert not torch.allclose(cls(x), mean(x), atol=1e-3)
    hidden = cls.model(input_ids=x[:, 0], attention_mask=x[:, 1]).last_hidden_state
    by_hand = torch.stack([h[m == 1].mean(0) for h, m in zip(hidden, x[:, 1], strict=True)])
    torch.testing.assert_close(mean(x), mean.proj(by_hand), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_keeps_the_transformer_fixed(bert_dir: Path, freeze: bool) -> None:
    enc = HFTextEncoder(input_shape=(2, 12), out_dim=8, path=str(bert_dir), pooling="mean", freeze=freeze)
    enc.train()
    assert enc.training and enc.model.training is not freeze  # a frozen transformer runs without dropout
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    opt = torch.optim.AdamW(enc.parameters(), lr=0.1, weight_decay=0.1)
    enc(hf_encode(TEXTS, bert_dir, max_length=12)).square().sum().backward()
    opt.step()
    for name, p in enc.model.named_parameters():
        assert (p.grad is None and not p.requires_grad) is freeze, name
    changed = {k for k, v in enc.state_dict().items() if not torch.equal(v, before[k])}
    assert {k.split(".")[0] for k in changed} == ({"proj"} if freeze else {"proj", "model"})


@needs_transformers
def test_bad_directories_are_one_line_errors(tmp_path: Path) -> None:
    cases = [(None, "path=None is not a directory"), (tmp_path / "absent", "is not a directory")]
    cases.append((tmp_path, "holds no Hugging Face model"))  # a directory without a model
    for path, match in cases:
        with pytest.raises(ConfigError, match=match) as info:
            HFTextEncoder(input_shape=(2, 8), path=None if path is None else str(path))
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="holds no tokenizer"):
        hf_encode(TEXTS, tmp_path, max_length=8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"input_shape": (12,)}, "input_shape=\\(12,\\)"), ({"input_shape": (2, 8), "pooling": "max"}, "'max'")],
)
def test_bad_options_are_one_line_errors(bert_dir: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        HFTextEncoder(path=str(bert_dir), **kwargs)


def test_missing_transformers_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now raises ImportError
    for build in (
        lambda: build_encoder("hf_text", (2, 8), 4, path=str(tmp_path)),
        lambda: hf_encode(TEXTS, tmp_path, max_length=8),
    ):
        with pytest.raises(MMBalanceError, match=r"pip install 'mmbalance\[text\]'") as info:
            build()
        assert "\n" not in str(info.value)
