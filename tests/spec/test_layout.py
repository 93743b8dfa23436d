"""A run's own pipeline layout (spec.layout, Megatron-Core's pipeline_model_parallel_layout): expanded, its chunks
dealt to the ranks, refused with a located line when it does not fit the parallelism or the model."""

from __future__ import annotations

import pytest

from supercluster import SpecError, build_scenario
from supercluster.spec.layout import Chunk, expand_layout, stage_loads, transformer_layers

DSV3 = "Et*4|(t*4|)*14tmL"  # Megatron-Bridge's DeepSeek-V3 layout for 16 chunks


def test_deepseek_v3_layout_deals_its_chunks_to_the_ranks() -> None:
    """16 chunks: on 8 ranks of 2 chunks the last holds 4 + 1 layers, the MTP module (a layer and a head pass) and
    the loss; on 4 ranks of 4 the last holds 12 + 2; 61 transformer layers either way."""
    chunks = expand_layout(DSV3)
    assert len(chunks) == 16 and chunks[0] == "Etttt" and chunks[-1] == "tmL"
    assert transformer_layers(DSV3) == 61
    assert [(r.layers, r.heads) for r in stage_loads(DSV3, 8)] == [(8, 0)] * 7 + [(6, 2)]
    assert [(r.layers, r.heads) for r in stage_loads(DSV3, 4)] == [(16, 0)] * 3 + [(14, 2)]
    assert stage_loads(DSV3, 8)[-1] == Chunk(transformer=5, mtp=1, loss=1)
    assert expand_layout("(tt|)*2tL") == ["tt", "tt", "tL"]


BASE = {"name": "layout", "cluster": {"base": "llama3-16k", "num_gpus": 2048}, "model": "deepseek-v3",
        "training": {"tokens": 1e12, "global_batch": 4096, "seq_len": 4096, "pipeline_layout": DSV3}}


@pytest.mark.parametrize(("training", "parallelism", "field", "words"), [
    ({}, {"pp": 8, "virtual_stages": 4}, "training.pipeline_layout", "the layout has 16 chunks"),
    ({"pipeline_layout": "Et*4|(t*4|)*14ttmL"}, {"pp": 8, "virtual_stages": 2}, "training.pipeline_layout",
     "places 62 transformer layers"),
    ({"pipeline_layout": "Et*4|(t*4|)*14tXL"}, {"pp": 8, "virtual_stages": 2}, "training.pipeline_layout",
     "made of E, t, m, L"),
])
def test_a_layout_that_does_not_fit_is_refused(training: dict, parallelism: dict, field: str, words: str) -> None:
    with pytest.raises(SpecError) as err:
        build_scenario({**BASE, "training": {**BASE["training"], **training}, "parallelism": parallelism})
    assert err.value.field == field and words in str(err.value)


def test_a_layout_that_fits_is_accepted() -> None:
    assert build_scenario({**BASE, "parallelism": {"pp": 8, "virtual_stages": 2}})
    assert build_scenario({**BASE, "parallelism": {"pp": 4, "virtual_stages": 4}})
