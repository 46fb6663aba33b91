"""Dynamic int8 quantisation for CPU inference, behind a switch (off by default, never in training).

The encoder's linear layers keep int8 weights and quantise their activations per batch (PyTorch's fbgemm kernels);
embeddings, the MLM head, the label words and the heads stay float32. On the shipped CLINC150 checkpoint it cut CPU
time per input 2.5x and moved the full-test accuracy from 96.40% to 95.93% (results/README.md, "Cost,
measured"). Activations are quantised per batch, so a text's probabilities depend slightly on its batch-mates.
It uses ``torch.ao.quantization.quantize_dynamic``, which PyTorch deprecates in favour of torchao; torchao's int8
path without ``torch.compile`` was barely faster than float on this CPU, so the older kernel is kept while this
torch has it.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from .model import CoTTModel

QUANTIZATIONS = ("int8",)


def quantize(model: CoTTModel, kind: str) -> CoTTModel:
    """``model`` (in place, returned in eval mode) with its encoder's ``nn.Linear`` layers in dynamic ``kind``."""
    if kind not in QUANTIZATIONS:
        raise ValueError(f"unknown quantisation {kind!r}; expected one of {QUANTIZATIONS}")
    devices = {p.device.type for p in model.parameters()}
    if devices != {"cpu"}:
        raise ValueError(f"{kind} quantisation runs on the CPU only; load the model with device='cpu' (it is on "
                         f"{', '.join(sorted(devices))})")
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:  # pragma: no cover - depends on the torch build
        raise RuntimeError(f"this torch ({torch.__version__}) has no torch.ao.quantization.quantize_dynamic; "
                           "serve without quantisation") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # see the module's docstring
        warnings.filterwarnings("ignore", "torch.quantize_per_tensor", UserWarning)  # the same deprecation
        quantize_dynamic(model.masked_lm().base_model, {nn.Linear}, dtype=torch.qint8, inplace=True)
    return model.eval()
