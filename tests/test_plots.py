"""The demo's figures are plotly's own JSON, built as plain dicts: each one must be exactly what plotly would send.

``go.Figure(fig)`` validates every property (it raises on a wrong name or value) and ``to_json`` gives plotly's
canonical form, template included; a figure that differs from it (a colour scale left as a name, a title given as
a bare string, a missing template) would render differently in the browser.
"""
from __future__ import annotations

import json
from dataclasses import replace

import plotly.graph_objects as go
import pytest

from cott.pipeline import Prediction, Sweep
from cott_demo import plots
from cott_demo.events import plot

PRED = Prediction(text="t", labels=["balance", "travel", "transfer"], answer="balance", p_rectified=[0.7, 0.2, 0.1],
                  p_answer=[0.6, 0.3, 0.1], steps=["banking", "travel"], step="banking", step_words="banking",
                  step_prob=0.8, p_steps=[0.8, 0.2], p_answer_step=[0.8, 0.15, 0.05])
MINE = Prediction(text="t", labels=PRED.labels, answer="travel", p_rectified=[0.2, 0.7, 0.1], p_answer=PRED.p_answer,
                  steps=PRED.steps, step="travel", step_words="travel", step_prob=0.2, p_steps=PRED.p_steps,
                  p_answer_step=[0.1, 0.85, 0.05])
DIRECT = Prediction(text="t", labels=["a", "b"], answer="a", p_rectified=[0.9, 0.1], p_answer=[0.9, 0.1], steps=[],
                    step=None, step_words=None, step_prob=None, p_steps=[], p_answer_step=None)
SWEEP = Sweep("t", ["banking", "travel"], PRED.labels, [[0.8, 0.15, 0.05], [0.1, 0.85, 0.05]], [0.8, 0.2])
HEATMAP = {"steps": ["a", "b"], "columns": ["x", "y"], "shares": [[0.5, 0.5], [0.0, 1.0]], "counts": [[1, 1], [0, 2]],
           "hierarchy": True, "steps_total": 3}
RATES = {"steps": ["a", "b"], "injections": [3, 1200], "flip_rate": [0.5, None], "following_rate": [None, 0.3],
         "steps_total": 2}

FIGURES = {
    "step": lambda: plots.step_figure(PRED, PRED.steps),
    "step, no steps": lambda: plots.step_figure(DIRECT, []),
    "answer": lambda: plots.answer_figure(PRED),
    "answer, direct": lambda: plots.answer_figure(DIRECT),
    "comparison": lambda: plots.comparison_figure(PRED, MINE),
    "sweep": lambda: plots.sweep_figure(SWEEP, SWEEP.steps),
    "placeholder": lambda: plots.placeholder("nothing yet"),
    "injection heatmap": lambda: plots.injection_heatmap(HEATMAP, "random_wrong"),
    "injection heatmap, flat": lambda: plots.injection_heatmap({**HEATMAP, "hierarchy": False}),
    "rates": lambda: plots.rate_bars(RATES),
    "rates, no labels": lambda: plots.rate_bars({**RATES, "following_rate": [None, None]}),
}


@pytest.mark.parametrize("name", FIGURES)
def test_a_figure_is_plotlys_own_json(name):
    fig = json.loads(json.dumps(FIGURES[name]()))
    assert fig == json.loads(go.Figure(fig).to_json())
    assert fig["layout"]["template"]["layout"]  # plotly's default template, as go.Figure adds it


def test_figure_contents():
    step = plots.step_figure(replace(PRED, step_words="money"), ["money", "trips"])  # steps shown in words
    (bar,) = step["data"]
    assert bar["y"] == ["money", "trips"] and bar["marker"]["color"] == [plots.ORANGE, plots.SKY]
    answer = plots.answer_figure(PRED)
    assert [t["name"] for t in answer["data"]] == ["p(y|x) direct", "p(y|x,Î) given step", "p̃(y|x) rectified"]
    assert answer["data"][2]["x"] == [0.7, 0.2, 0.1] and answer["data"][0]["y"][0] == "<b>★ balance</b>"
    assert [t["name"] for t in plots.answer_figure(DIRECT)["data"]] == ["p(y|x) direct"]
    sweep = plots.sweep_figure(SWEEP, ["money", "trips"])["data"][0]
    assert sweep["y"][0] == "<b>money (Î)</b>" and sweep["x"][:2] == ["travel", "balance"]  # most likely first
    assert sweep["z"][1][0] == 0.85


def test_plot_value_is_the_figure_serialised_for_gradio():
    fig = plots.step_figure(PRED, PRED.steps)
    value = plot(fig)
    assert value.type == "plotly" and json.loads(value.plot) == json.loads(json.dumps(fig))
