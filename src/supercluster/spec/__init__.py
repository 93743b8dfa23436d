"""Typed inputs: frozen pydantic specs, the parallelism rules, catalog lookup and scenario loading."""

from .base import Spec
from .hardware import Accelerator, Cluster, Fabric, Facility, MatmulModel
from .load import build_scenario, load_scenario, read_data_file
from .model import MLA, SSM, Model, MoE
from .scenario import Scenario
from .training import Parallelism, Training

__all__ = [
    "MLA",
    "Accelerator",
    "Cluster",
    "Fabric",
    "Facility",
    "MatmulModel",
    "Model",
    "MoE",
    "SSM",
    "Parallelism",
    "Scenario",
    "Spec",
    "Training",
    "build_scenario",
    "load_scenario",
    "read_data_file",
]
