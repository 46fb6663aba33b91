"""Chain-of-Thought Tuning for masked language models: a step at [C], then the answer at [A]."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import CheckpointConfig
from .data import DataError, Example
from .model import CoTTModel
from .pipeline import CoTTPipeline, Prediction, Sweep
from .rectify import rectify, topk_marginal
from .tasks import TASKS, Task, get_task
from .template import Template
from .verbalizer import Verbalizer

__all__ = [
    "CheckpointConfig", "CheckpointError", "CoTTModel", "CoTTPipeline", "DataError", "Example", "Prediction", "Sweep", "TASKS",
    "Task", "Template", "Verbalizer", "get_task", "load_checkpoint", "rectify", "save_checkpoint", "topk_marginal",
]
