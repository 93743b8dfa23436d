"""A small design space, written by the tests themselves: an 8B model on tens to hundreds of GPUs (fast to plan)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

# An accelerator that costs more and draws more than an H100 for a third of its peak (an A100 at a made-up price
# and power): every design of it is beaten by an H100 design, so the search prunes some without planning them.
WORSE = {"cluster": {"base": "colossus",
                     "accelerator": {"base": "A100-SXM4-80GB", "price_usd": 1.0e5, "tdp_w": 1000.0}}}


def small_design(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "small",
        "scenario": {"cluster": "colossus", "model": "llama3-8b", "facility": "memphis-colossus",
                     "training": {"tokens": 2.0e11, "global_batch": 256, "seq_len": 4096, "precision": "bf16"}},
        "space": {"accelerators": ["H100-SXM5-80GB", WORSE], "num_gpus": [64, 128, 256],
                  "fabrics": ["spectrum-x", "quantum-2-ndr"],
                  "facilities": ["memphis-colossus", {"base": "memphis-colossus", "pue": 1.4}]},
    }
    for key, value in changes.items():
        data[key] = value
    return data


def write(tmp_path: Path, data: dict[str, Any], name: str = "design.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def design_file(tmp_path: Path) -> Path:
    return write(tmp_path, small_design())
