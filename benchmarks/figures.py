"""CPU cost of the two figures of a /predict answer, side by side in one run: built as plotly JSON dicts
(``cott_demo.plots``, what the app sends) against the same figures through ``go.Figure`` validation and ``to_json``
(what the app paid before the dicts).

    python -m benchmarks.figures --checkpoint assets/clinc150 --repeats 200
"""
from __future__ import annotations

import argparse
import json
import time

import plotly.graph_objects as go

from cott import CoTTPipeline
from cott_demo import plots


def cpu_ms(make, repeats: int) -> float:
    start = time.process_time()
    for _ in range(repeats):
        make()
    return (time.process_time() - start) / repeats * 1e3


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="assets/clinc150")
    p.add_argument("--text", default="how do i raise my credit limit")
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args(argv)
    pred = CoTTPipeline.from_pretrained(args.checkpoint, device="cpu")(args.text)
    figures = lambda: (plots.step_figure(pred), plots.answer_figure(pred))  # noqa: E731
    dicts = cpu_ms(lambda: [json.dumps(f) for f in figures()], args.repeats)
    validated = cpu_ms(lambda: [go.Figure(f).to_json() for f in figures()], args.repeats)
    print(f"two /predict figures, CPU per request: {dicts:.2f} ms as JSON dicts, {validated:.2f} ms through go.Figure "
          f"({validated / dicts:.0f}x), {args.repeats} repeats")


if __name__ == "__main__":
    main()
