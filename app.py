"""CoTT demo: inspect a model's chain of thought (step I, then the answer) and inject a step of your own.

The Hugging Face Spaces entry point: builds the demo from ``cott_demo`` and launches it. Run locally with
``python app.py`` (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are respected). Checkpoints default to assets/clinc150
and assets/conll04; COTT_CHECKPOINTS="dir1,dir2,owner/hub-id" overrides them. Concurrent requests are served in
batches (cott_demo/serving.py; COTT_BATCHING=0 turns it off, COTT_BATCH_MAX and COTT_BATCH_WAIT_MS bound a batch).
"""
from __future__ import annotations

try:  # ZeroGPU (Hugging Face Spaces): `spaces` first, before torch can touch CUDA; a no-op elsewhere
    import spaces  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    pass

import logging
import os

from cott_demo.layout import LAUNCH_KWARGS, build_demo

__all__ = ["LAUNCH_KWARGS", "build_demo", "main"]


def main():
    logging.basicConfig(level=logging.INFO)
    demo = build_demo()
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **LAUNCH_KWARGS,
    )


if __name__ == "__main__":
    main()
