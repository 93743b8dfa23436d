"""A run's own pipeline layout: Megatron-Core's ``pipeline_model_parallel_layout``.

The layout lists the model chunks in order, separated by '|': chunk i runs on pipeline rank i mod pp as its
(i // pp)-th virtual stage (Megatron-Core pipeline_parallel_layout.py, PipelineParallelLayerLayout). A chunk is a
string of 'E' (the input embedding), 't' (a transformer layer), 'm' (a multi-token-prediction module: a transformer
layer whose output goes through the shared LM head again, DeepSeek-V3 §2.2) and 'L' (the LM head and the loss);
'x*N' repeats a symbol N times and '(...)*N' a group, so DeepSeek-V3's layout for 8 stages of 2 chunks in
Megatron-Bridge (set_deepseek_v3_pipeline_model_parallel_layout) reads 'Et*4|(t*4|)*14tmL'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_GROUP = re.compile(r"\(([^()]*)\)\*(\d+)")
_SYMBOL = re.compile(r"([EtmL])\*(\d+)")
ALLOWED = re.compile(r"^[EtmL|()*0-9\s]*$")


def expand_layout(layout: str) -> list[str]:
    """The layout as its list of chunks, repetitions expanded: 'Et*3|(tt|)*6mL' -> ['Ettt', 'tt', ..., 'mL']."""
    text = layout.replace(" ", "")
    while _GROUP.search(text):
        text = _GROUP.sub(lambda g: g.group(1) * int(g.group(2)), text)
    text = _SYMBOL.sub(lambda g: g.group(1) * int(g.group(2)), text)
    return text.split("|")


@dataclass(frozen=True)
class Chunk:
    """What a model chunk (or a rank's chunks together) holds: the model's transformer layers ('t'),
    multi-token-prediction modules ('m') and losses ('L')."""

    transformer: int
    mtp: int = 0
    loss: int = 0

    @property
    def layers(self) -> int:
        """Layers it computes: the model's and each multi-token-prediction module's."""
        return self.transformer + self.mtp

    @property
    def heads(self) -> int:
        """LM-head passes it runs: the loss's and each multi-token-prediction module's."""
        return self.loss + self.mtp

    def __add__(self, other: Chunk) -> Chunk:
        return Chunk(self.transformer + other.transformer, self.mtp + other.mtp, self.loss + other.loss)


def layout_chunks(layout: str) -> list[Chunk]:
    return [Chunk(c.count("t"), c.count("m"), c.count("L")) for c in expand_layout(layout)]


def transformer_layers(layout: str) -> int:
    """The model's transformer layers the layout places (its 't')."""
    return sum(c.transformer for c in layout_chunks(layout))


def stage_chunks(layout: str, pp: int) -> list[list[Chunk]]:
    """Per pipeline rank, its chunks in virtual-stage order (chunk i on rank i mod pp)."""
    chunks = layout_chunks(layout)
    return [chunks[s::pp] for s in range(pp)]


def stage_loads(layout: str, pp: int) -> list[Chunk]:
    """Per pipeline rank, what its chunks hold together."""
    return [sum(cs, start=Chunk(0)) for cs in stage_chunks(layout, pp)]
