"""``semcodec lossless-bench`` sharding: N processes side by side give the table one process gives."""

from __future__ import annotations

import argparse
import json

import pytest
from PIL import Image

from lossless_tiny import small_image, tiny_model_dir
from semcodec.bench.lossless import merge_results, parse_shard, run_bench, verify_saved


@pytest.fixture(scope="module")
def bench_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("lossless_bench")
    data = root / "images"
    data.mkdir()
    for i, shape in enumerate([(16, 24), (20, 12), (12, 12)]):
        Image.fromarray(small_image(*shape, seed=i)).save(data / f"img{i}.png")
    return data, str(tiny_model_dir(root)), root


def test_shards_merge_to_the_unsharded_result(bench_setup):
    data, weights, root = bench_setup
    whole = run_bench(data, None, 0, None, weights, adapt_steps=0)
    paths = []
    for k in (1, 2):
        out = root / f"shard{k}.json"
        part = run_bench(data, None, 0, out, weights, adapt_steps=0, save_dir=root / "smc", shard=(k, 2))
        assert part["images"] == (2 if k == 1 else 1)
        paths.append(out)
    merged = merge_results(paths)
    assert [r["image"] for r in merged["rows"]] == [r["image"] for r in whole["rows"]]
    for a, b in zip(merged["rows"], whole["rows"], strict=True):
        assert a["ours"] == b["ours"] and a["JPEG-XL-e7"] == b["JPEG-XL-e7"]
    assert merged["mean"]["ours"] == pytest.approx(whole["mean"]["ours"])
    # verification shards cover every saved file exactly once
    assert verify_saved(data, root / "smc", 1, weights, (1, 2)) + verify_saved(data, root / "smc", 2, weights, (2, 2)) == 3


def test_overlapping_or_mismatched_shards_are_refused(tmp_path):
    def shard(name: str, images: list[str], quality: int | None) -> str:
        f = tmp_path / name
        f.write_text(json.dumps({"images": len(images), "quality": quality, "rows": [{"image": i} for i in images]}))
        return f

    a, b = shard("a.json", ["x.png"], None), shard("b.json", ["x.png", "y.png"], None)
    with pytest.raises(ValueError, match="overlap"):
        merge_results([a, b])
    with pytest.raises(ValueError, match="different --quality"):
        merge_results([a, shard("c.json", ["z.png"], 70)])


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "2"])
def test_bad_shard_text_is_rejected(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_shard(text)
