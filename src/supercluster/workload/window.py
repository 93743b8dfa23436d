"""Sliding-window (local) attention: how many keys a query attends, and which layers of a stage are windowed.

A windowed layer lets query i (0-based, causal) attend the min(i + 1, w) most recent keys, itself included
(Beltagy et al. 2020, Longformer §3.1: the cost of a sliding window grows as s*w, not s^2; Jiang et al. 2023,
Mistral 7B §2: each token attends at most W tokens of the previous layer; Hugging Face's sliding-window mask keeps
key j for query i when i - w < j <= i). Over a sequence of s queries the mean is

    k(s, w) = (w(w + 1)/2 + (s - w) w) / s        for s >= w,      k(s, s) = (s + 1)/2 (full causal attention),

and a windowed layer does the share k(s, w)/k(s, s) of a full causal layer's attention work. FlashAttention-2
computes only the key blocks that meet the window (local attention, ``window_size`` in flash-attn >= 2.3; Dao 2023),
so its FLOPs and time shrink with that share.

The PaLM convention counts a full layer's attention as if every query attended all s keys (no causal halving);
a windowed layer is counted with the same convention, over the keys it attends: an *equivalent key length*

    s_eq(s, w) = s * k(s, w) / k(s, s) = w (2s - w + 1) / (s + 1)        (= s when w >= s),

so model FLOPs, executed flash-attention FLOPs (half the PaLM count, as for a full layer) and the kernel's
efficiency ramp (calibrated on full causal layers at key length s) all read one number.
"""

from __future__ import annotations

import numpy as np

from ..spec.model import Model


def causal_keys_per_query(seq_len: int, window: int | None) -> float:
    """Mean keys a query attends in a causal layer limited to the ``window`` most recent keys (None: no limit)."""
    s = seq_len
    w = s if window is None else min(window, s)
    return (w * (w + 1) / 2 + (s - w) * w) / s


def equivalent_key_len(seq_len: int, window: int | None) -> float:
    """The key length a full causal layer would have for the attention work of a windowed one (module docstring):
    ``seq_len`` exactly when there is no window or it covers the sequence."""
    if window is None or window >= seq_len:
        return float(seq_len)
    s, w = float(seq_len), float(window)
    return w * (2.0 * s - w + 1.0) / (s + 1.0)


def band_keys(seq_len: int, window: int | None) -> int:
    """Keys per query an unfused (banded) implementation materialises scores for: the window's width, at most s
    (a banded score matrix, Longformer's sliding-chunks; the mask is applied inside the band, not skipped)."""
    return seq_len if window is None else min(window, seq_len)


def effective_window(model: Model, seq_len: int) -> int | None:
    """The model's window when it limits some layer at this sequence length; None when no layer is windowed or the
    window covers the whole sequence (then a windowed layer is a full one, to the bit)."""
    w = model.sliding_window
    if w is None or w >= seq_len or model.windowed_layers == 0:
        return None
    return w


def _prefix(model: Model) -> np.ndarray:
    """Windowed layers among the first n layers, for n = 0..L."""
    return np.concatenate([[0.0], np.cumsum(np.asarray(model.windowed_layer_flags, dtype=np.float64))])


def windowed_in_first_and_last(model: Model, lps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windowed layers among the first ``lps`` layers (the first pipeline stage) and among the last ``lps`` (the
    last stage), stages holding contiguous layers (under an interleaved schedule a rank's chunks are spread
    over the model: the count is then that of its first chunk's neighbourhood, an approximation)."""
    pre = _prefix(model)
    L = model.layers
    n = np.clip(np.asarray(lps, dtype=np.float64), 0.0, L).astype(np.int64)
    return pre[n], pre[L] - pre[L - n]


def windowed_on_busiest_stage(model: Model, pp: np.ndarray) -> np.ndarray:
    """Windowed layers on the slowest pipeline stage: the step model gives that stage ceil(L/pp) layers (as
    memory.layers_per_stage), and of the contiguous stages k*ceil(L/pp) .. (k+1)*ceil(L/pp) - 1 takes the one with
    the most full-attention layers (a full layer costs at least a windowed one); its other layers are windowed."""
    pp = np.asarray(pp, dtype=np.float64)
    pre = _prefix(model)
    L = model.layers
    out = np.zeros(pp.shape)
    for p in np.unique(pp):
        lps = int(np.ceil(L / p))
        starts = np.minimum(np.arange(int(p)) * lps, L)
        ends = np.minimum(starts + lps, L)
        full = (ends - starts) - (pre[ends] - pre[starts])
        out[pp == p] = lps - float(full.max())
    return out
