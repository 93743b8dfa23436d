"""Training software → how it holds memory (the memory model's :class:`~.memory.MemoryOptions`).

The figures live in the catalog (``catalog/software.yaml``, each with its source); this module picks them for a
framework, a GPU generation and a precision, under the choices a run makes (:class:`SoftwareChoices`: optimizer and
its state precision, master weights, optimizer in the backward, fp8 parameters, the loss's implementation).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal, NamedTuple, get_args

import numpy as np

from ..spec.hardware import Accelerator
from ..spec.software import framework_software as software
from ..spec.training import Framework
from .memory import INT8_STATE_BYTES, MemoryOptions
from .quantization import FORMATS, low_precision

Optimizer = Literal["adam", "muon", "adafactor"]
StateDtype = Literal["fp32", "bf16", "int8"]
Loss = Literal["eager", "fused", "chunked"]
FRAMEWORKS: tuple[Framework, ...] = get_args(Framework)
CHUNKED_LOSS_CHUNKS = 8  # torchtune CEWithChunkedOutputLoss num_output_chunks default (ce_chunked_output_loss.py 30)


def accelerator_family(accelerator: Accelerator) -> str:
    """GPU generation for software facts that differ by architecture (library workspaces); parts the catalog gives
    none (AMD, Intel, Fujitsu) take Hopper's figures."""
    return accelerator.architecture or "hopper"


def nccl_communicator_bytes(framework: Framework) -> float:
    """NCCL buffers of one communicator: a connection's buffers (all protocols) x channels x ring peers."""
    n = software(framework).nccl
    return n.connection_bytes * n.channels * n.peers


def communicators(framework: Framework, degrees: dict[str, Any]) -> Any:
    """NCCL communicators a first-stage rank holds (torch creates each lazily, at a group's first collective):
    the world group (barriers), tensor, data and model parallel groups, context and expert groups, and with a
    pipeline the pipe group, the tied-embedding group of the first and last stages and one two-rank communicator
    per send/recv peer. Megatron-DeepSpeed also builds DeepSpeed's own slice group over the tensor-parallel ranks
    (deepspeed runtime/pipe/topology.py 309-362; Megatron-DeepSpeed megatron/mpu/initialize.py 118-166). Scalars
    or arrays of degrees."""
    tp, pp, dp, cp, ep = (np.asarray(degrees.get(k, 1), dtype=np.float64) for k in ("tp", "pp", "dp", "cp", "ep"))
    n = (1.0 + (tp > 1) + (dp * cp > 1) + (tp * pp > 1) + (cp > 1) + (ep > 1) + 3.0 * (pp > 1)
         + ((tp > 1) if framework == "megatron-deepspeed" else 0.0))
    return int(n) if np.ndim(n) == 0 else n


class SoftwareChoices(NamedTuple):
    """What a run chooses within its framework (Training fields; a validation row's own words)."""

    optimizer: Optimizer = "adam"
    state_dtype: StateDtype = "fp32"
    master_weights: bool = True  # False: the weights are the master copy (pure bf16 training)
    optimizer_in_backward: bool = False
    fp8_params: bool = False
    loss: Loss = "eager"
    compiled: bool = False
    bf16_optimizer_fp32_grads: bool = False  # DeepSpeed's BF16 optimizer: an unsharded fp32 gradient buffer
    grad_accum_fp32: bool | None = None  # the run's own gradient precision (None: the framework's default)
    optimizer_instances: int = 1  # Megatron-LM --num-distributed-optimizer-instances
    whole_tensor_shards: bool = False  # the distributed optimizer deals whole tensors to ranks (MemoryOptions)
    deferred_output_grads: float = 0.0  # micro-batches whose output-layer wgrad waits for the flush (MemoryOptions)
    graph_static_inputs: int = 0  # per-layer CUDA graphs' static inputs: 0 none, 1 hidden, 2 + mask (MemoryOptions)
    software_date: date | None = None  # the release the run used, when older than the catalog's (None: current)
    zero3_by_tensor: bool = False  # ZeRO-3 gathers tensor by tensor (DeepSpeed < 0.6; MemoryOptions)


def framework_memory_options(framework: Framework, *, accelerator: Accelerator, precision: str,
                             choices: SoftwareChoices = SoftwareChoices(), communicators: Any = 0,
                             grouped_gemm: bool = False, transformer_engine: bool = True,
                             extra_workspace_bytes: float = 0.0, tp_comm_overlap: bool = False) -> MemoryOptions:
    """The memory options of ``framework`` on ``accelerator`` at ``precision`` under the run's ``choices``;
    ``communicators``: NCCL communicators the rank holds; ``extra_workspace_bytes``: the run's own persistent buffers
    (a data loader's attention mask, a score buffer); ``transformer_engine``: the run's layers are Transformer
    Engine's (its own cuBLAS workspace); ``tp_comm_overlap``: its GEMMs overlap tensor-parallel communication
    (Transformer Engine's Userbuffers GEMMs take workspaces of their own).

    Optimizer state per parameter: Adam's two moments (fp32 8 B, bf16 4 B, 8-bit blockwise
    :data:`INT8_STATE_BYTES`); Muon one momentum on matrices (Adam on embeddings and the output layer, Jordan et al.
    2024, Megatron-LM emerging_optimizers.py); Adafactor's factored second moment, row and column sums, no first
    moment (Shazeer and Stern 2018, beta1 = None): about nothing per parameter."""
    sw = software(framework)
    c = choices
    # an fp4 run quantizes GEMM inputs only: its gradient and master buffers are an fp8 run's (quantization.py)
    fmt = low_precision(precision)
    buffers = "fp8" if fmt is not None else precision
    grad = sw.grad_bytes[buffers]
    master = sw.master_bytes[buffers]
    moments = {"fp32": 8.0, "bf16": 4.0, "int8": INT8_STATE_BYTES}[c.state_dtype]
    state = embedding_state = moments if c.state_dtype != "fp32" else sw.state_bytes
    if c.optimizer == "muon":
        state = moments / 2.0
    elif c.optimizer == "adafactor":
        state = embedding_state = 0.0
    weight = 2.0
    if fmt is not None:  # fp8 parameters replace the 16-bit weights in fp8 runs; fp4 runs keep them (MLPerf v5.1)
        weight = sw.fp8_param_bytes if c.fp8_params and precision == "fp8" else (
            2.0 + sw.fp8_weight_cache_bytes * fmt.operand_bytes / FORMATS["fp8"].operand_bytes)
    if not c.master_weights:  # the model built in bf16: weights are the master copy, gradients bf16
        master, grad = 0.0, 2.0
    if c.grad_accum_fp32 is not None:
        grad = 4.0 if c.grad_accum_fp32 else 2.0
    if c.bf16_optimizer_fp32_grads:
        grad += 4.0
    logit, upcast = sw.loss_logit_bytes, sw.loss_upcast_bytes["fused" if c.loss == "fused" or c.compiled
                                                              else "eager"]
    chunks = 1
    if c.loss == "chunked":  # every 16-bit chunk kept; one chunk upcast (and its softmax) at a time
        chunks, logit, upcast = CHUNKED_LOSS_CHUNKS, 2.0, 4.0 + upcast
    family = accelerator_family(accelerator)
    workspace = sw.cublas_workspace_bytes[family] * sw.cublas_handles + extra_workspace_bytes
    if transformer_engine:
        workspace += sw.te_workspace_bytes[family] * (1.0 + (sw.te_ub_workspaces if tp_comm_overlap else 0.0))
    if grouped_gemm:
        workspace += sw.grouped_gemm_workspace_bytes
    comms = np.asarray(communicators, dtype=np.float64)
    runtime = sw.cuda_context_bytes + np.where(
        comms > 0, sw.nccl.init_bytes + comms * nccl_communicator_bytes(framework), 0.0)
    runtime_out: float | np.ndarray = float(runtime) if runtime.ndim == 0 else runtime
    return MemoryOptions(weight_bytes=weight, grad_bytes=grad, master_bytes=master, state_bytes=state,
                         embedding_state_bytes=embedding_state, optimizer_in_backward=c.optimizer_in_backward,
                         loss_logit_bytes=logit, loss_upcast_bytes=upcast, loss_chunks=chunks,
                         workspace_bytes=workspace, runtime_bytes=runtime_out,
                         reserved_over_allocated=sw.reserved_over_allocated,
                         step_transient_bytes=sw.step_transient_bytes,
                         unsharded_step_transient_bytes=sw.unsharded_step_transient_bytes,
                         eager=sw.eager_fp32_copies and not c.compiled, lazy_gradients=sw.lazy_gradients,
                         fsdp_gather_params=sw.fsdp_gather_params,
                         zero3_by_tensor=sw.zero3_by_tensor.params if c.zero3_by_tensor and sw.zero3_by_tensor
                         else None,
                         fsdp_keeps_ends=sw.fsdp_keeps_outer_params_since is not None and (
                             c.software_date is None or c.software_date >= sw.fsdp_keeps_outer_params_since),
                         optimizer_instances=float(c.optimizer_instances),
                         whole_tensor_shards=c.whole_tensor_shards,
                         deferred_output_grads=c.deferred_output_grads,
                         graph_static_inputs=c.graph_static_inputs)
