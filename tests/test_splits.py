"""The split by content: stable per photo, independent of the other photos, close to the asked fractions."""

import pytest
from PIL import Image

from aigen.errors import UserError
from aigen.splits import check_fractions, content_key, split_of


def test_a_photo_keeps_its_split_whatever_else_is_there():
    keys = [f"sha256:{n:064x}" for n in range(2000)]
    splits = [split_of(key, 0, 0.1, 0.1) for key in keys]
    assert [split_of(key, 0, 0.1, 0.1) for key in reversed(keys)] == list(reversed(splits))
    shares = {name: splits.count(name) / len(keys) for name in ("train", "val", "test")}
    assert 0.77 < shares["train"] < 0.83 and 0.08 < shares["val"] < 0.12 and 0.08 < shares["test"] < 0.12
    assert [split_of(key, 1, 0.1, 0.1) for key in keys] != splits  # the seed draws another split


def test_the_content_key_is_the_source_hash_or_the_pixels(tmp_path):
    assert content_key(tmp_path, {"source_sha256": "ab", "original": "x.jpg"}) == "sha256:ab"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "b.png")
    assert content_key(tmp_path, {"original": "a.png"}) == content_key(tmp_path, {"original": "b.png"})


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.1), (0.5, 0.5), (0.1, True)])
def test_bad_fractions_are_user_errors(val, test):
    with pytest.raises(UserError):
        check_fractions(val, test)
