"""Plotly figures for the demo: predictions and plain data in, figures out (no model, no gradio).

A figure is plotly's own JSON form, a dict ``{"data": [traces], "layout": {...}}`` with plotly's default template,
exactly what ``go.Figure(...).to_json()`` would send to the browser; built as plain dicts because validating
``go.Figure`` objects cost ~30 ms of CPU per /predict, more than the batched forward (``go.Figure(fig)`` checks one).
Every figure has an explicit height, horizontal bars (long label names stay readable on a phone) and
colour-blind-safe colours (Okabe-Ito). Text that may come from a user is HTML-escaped (``render.esc_html``),
since plotly interprets a few tags inside labels.
"""
from __future__ import annotations

import functools
from typing import Sequence

from plotly.colors import make_colorscale, sequential

from .render import TOP_LABELS, answer_under_step, esc_html, top_indices

Figure = dict  # {"data": [...], "layout": {...}}: plotly's figure JSON

# Okabe-Ito palette.
BLUE, ORANGE, GREEN, GREY, VERMILION, SKY = "#0072B2", "#E69F00", "#009E73", "#999999", "#D55E00", "#56B4E9"
FONT = dict(family="Inter, system-ui, -apple-system, Segoe UI, sans-serif", size=13)
MAX_LABEL = 38
TOP_STEPS = 8
SWEEP_LABELS = 8
BLUES = make_colorscale(sequential.Blues)  # as plotly expands "Blues"


@functools.cache
def template() -> dict:
    """Plotly's default template, as go.Figure adds it (read once)."""
    import plotly.io as pio

    return pio.templates[pio.templates.default].to_plotly_json()


def figure(data: list[dict], layout: dict) -> Figure:
    """A figure from traces and a layout, with plotly's default template."""
    return {"data": data, "layout": {**layout, "template": template()}}


def label(text: str, limit: int = MAX_LABEL) -> str:
    """A safe, short axis label."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return esc_html(text)


def _title(text: str) -> dict:
    return dict(text=text, x=0, xanchor="left", font=dict(size=15))


def _layout(title: str, height: int, xtitle: str = "probability", **kw) -> dict:
    return dict(
        title=_title(title),
        height=height,
        autosize=True,
        font=FONT,
        margin=dict(l=10, r=20, t=48, b=40),
        plot_bgcolor="white",
        paper_bgcolor="white",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
        xaxis=dict(title=dict(text=xtitle), range=[0, 1.05], gridcolor="#e5e5e5", zeroline=False, tickformat=".0%"),
        yaxis=dict(automargin=True, autorange="reversed", ticks="", showgrid=False),
        uniformtext=dict(minsize=10, mode="show"),  # a label inside a thin bar keeps a readable size
        **kw,
    )


def _height(rows: int, per_row: int = 30, base: int = 120, lo: int = 220, hi: int = 640) -> int:
    return max(lo, min(hi, base + per_row * rows))


INSIDE_FROM = 0.8  # a bar this long has its label inside its end: outside, a phone's narrow chart would cut it


def _hbar(name: str | None, x, y, colour, text, hover: str) -> dict:
    x = [float(v) for v in x]
    bar = dict(type="bar", x=x, y=list(y), orientation="h", marker=dict(color=colour), text=list(text),
               textposition=["inside" if v >= INSIDE_FROM else "outside" for v in x], insidetextanchor="end",
               cliponaxis=False, hovertemplate=hover)
    if name is not None:
        bar["name"] = name
    return bar


def _heatmap(z, x, y, text, hover: str, bar_title: str, **kw) -> dict:
    return dict(type="heatmap", z=[[float(v) for v in r] for r in z], x=list(x), y=list(y), zmin=0, zmax=1,
                colorscale=BLUES, text=text, texttemplate="%{text}", textfont=dict(size=11), hovertemplate=hover,
                colorbar=dict(title=dict(text=bar_title), tickformat=".0%", thickness=12), **kw)


def step_bars(steps: Sequence[str], probs: Sequence[float], chosen: str | None = None, title: str = "Step I: p(I | x)") -> Figure:
    """The top steps as horizontal bars; the generated step Î in orange."""
    colours = [ORANGE if s == chosen else SKY for s in steps]
    bar = _hbar(None, probs, [label(s) for s in steps], colours, [f"{p:.1%}" for p in probs],
                "%{y}: %{x:.2%}<extra></extra>")
    return figure([bar], _layout(title, _height(len(steps)), showlegend=False))


def answer_bars(
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    answer: str | None = None,
    title: str = "Answer: top labels",
) -> Figure:
    """Grouped horizontal bars, one group per label and one bar per distribution; the answer's tick is bold."""
    colours = [GREY, BLUE, GREEN, VERMILION, ORANGE]
    ticks = [f"<b>★ {label(l)}</b>" if l == answer else label(l) for l in labels]
    bars = [_hbar(esc_html(name), probs, ticks, colour, [f"{p:.0%}" for p in probs],
                  f"{esc_html(name)}<br>%{{y}}: %{{x:.2%}}<extra></extra>")
            for (name, probs), colour in zip(series.items(), colours)]
    height = _height(len(labels), per_row=24 * max(1, len(series)), base=130, hi=720)
    return figure(bars, _layout(title, height, barmode="group", bargap=0.25, bargroupgap=0.05))


def sweep_heatmap(steps: Sequence[str], labels: Sequence[str], probs: Sequence[Sequence[float]], chosen: str | None = None) -> Figure:
    """p(y | x, I) over every known step (rows) and the top labels (columns), with the values written in."""
    rows = [f"<b>{label(s, 30)} (Î)</b>" if s == chosen else label(s, 30) for s in steps]
    cols = [label(l, 22) for l in labels]
    trace = _heatmap(probs, cols, rows, [[f"{p:.0%}" for p in r] for r in probs],
                     "step %{y}<br>answer %{x}<br>p = %{z:.2%}<extra></extra>", "p")
    return figure([trace], dict(
        title=_title("Sweep: p(y | x, I) for every step I"),
        height=_height(len(steps), per_row=28, base=170, lo=280, hi=900),
        autosize=True,
        font=FONT,
        margin=dict(l=10, r=10, t=48, b=10),
        paper_bgcolor="white",
        xaxis=dict(side="top", tickangle=-30, automargin=True),
        yaxis=dict(autorange="reversed", automargin=True),
    ))


def placeholder(message: str, height: int = 220) -> Figure:
    """An empty figure with a message, for a chart that has nothing to show yet."""
    note = dict(text=esc_html(message), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(color=GREY))
    return figure([], dict(annotations=[note], height=height, autosize=True, font=FONT,
                           margin=dict(l=10, r=10, t=10, b=10), paper_bgcolor="white", plot_bgcolor="white",
                           xaxis=dict(visible=False), yaxis=dict(visible=False)))


# ---- figures of a prediction, an injection and a sweep -----------------------------------------
def step_figure(pred, shown: Sequence[str]) -> Figure:
    """p(I|x) of the top steps; ``shown``: every step in words, following ``pred.steps``."""
    if not pred.p_steps:
        return placeholder("this model has no intermediate step")
    idx = top_indices(pred.p_steps, TOP_STEPS)
    return step_bars([shown[i] for i in idx], [pred.p_steps[i] for i in idx], pred.step_words)


def answer_figure(pred) -> Figure:
    idx = top_indices(pred.p_rectified, TOP_LABELS)
    labels = [pred.labels[i] for i in idx]
    series = {"p(y|x) direct": [pred.p_answer[i] for i in idx]}
    if pred.p_answer_step is not None:
        series["p(y|x,Î) given step"] = [pred.p_answer_step[i] for i in idx]
        series["p̃(y|x) rectified"] = [pred.p_rectified[i] for i in idx]
    return answer_bars(labels, series, pred.answer, title="Answer: top labels")


def _short(text: str, limit: int = 30) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def comparison_figure(base, mine) -> Figure:
    idx = list(dict.fromkeys(top_indices(base.p_answer_step, 3) + top_indices(mine.p_answer_step, 3)))
    labels = [base.labels[i] for i in idx]
    series = {
        f"under Î: {base.step_words}": [base.p_answer_step[i] for i in idx],
        f"under yours: {_short(mine.step_words)}": [mine.p_answer_step[i] for i in idx],
    }
    return answer_bars(labels, series, answer_under_step(mine), title="p(y|x,step): model's step vs yours")


def sweep_figure(sw, shown: Sequence[str]) -> Figure:
    """The sweep's heatmap: every step (``shown``: in words, following ``sw.steps``), the most likely first, and the
    labels that any step makes most likely."""
    order = top_indices(sw.p_steps, len(sw.steps))
    cols = sorted(range(len(sw.labels)), key=lambda j: -max(r[j] for r in sw.probs))[:SWEEP_LABELS]
    return sweep_heatmap([shown[i] for i in order], [sw.labels[j] for j in cols],
                         [[sw.probs[i][j] for j in cols] for i in order], chosen=shown[order[0]])


# ---- an experiment's figures (plain data from cott_demo.experiment) -----------------------------
def injection_heatmap(data: dict, policy: str = "") -> Figure:
    """Injected step (rows) -> the step the answer belongs to (columns), as each row's share of its injections."""
    if not data["steps"]:
        return placeholder("no step was injected")
    rows = [label(s, 30) for s in data["steps"]]
    cols = [label(c, 22) for c in data["columns"]]
    shares, counts = data["shares"], data["counts"]
    what = "the step the answer belongs to" if data["hierarchy"] else "the answer"
    more = f" (the {len(rows)} most injected of {data['steps_total']})" if data["steps_total"] > len(rows) else ""
    trace = _heatmap(shares, cols, rows, [[f"{p:.0%}" if n else "" for p, n in zip(r, c)] for r, c in zip(shares, counts)],
                     "injected %{y}<br>answer in %{x}<br>%{z:.1%} (%{customdata} injections)<extra></extra>", "share",
                     customdata=[list(r) for r in counts])
    title = f"Injected step → {what}" + (f" ({esc_html(policy)})" if policy else "") + more
    return figure([trace], dict(
        title=_title(title),
        height=_height(len(rows), per_row=28, base=220, lo=320, hi=900),
        autosize=True,
        font=FONT,
        margin=dict(l=10, r=10, t=48, b=10),
        paper_bgcolor="white",
        xaxis=dict(side="bottom", tickangle=-40, automargin=True, title=dict(text=what)),
        yaxis=dict(autorange="reversed", automargin=True, title=dict(text="injected step")),
    ))


def rate_bars(data: dict) -> Figure:
    """Flip rate and step-following rate per injected step (grouped horizontal bars, the most injected first)."""
    if not data["steps"]:
        return placeholder("no step was injected")
    ticks = [f"{label(s, 30)} ({n:,})" for s, n in zip(data["steps"], data["injections"])]
    series = [("flip rate", data["flip_rate"], VERMILION)]
    if any(r is not None for r in data["following_rate"]):
        series.append(("step-following rate", data["following_rate"], GREEN))
    bars = [_hbar(name, [r or 0 for r in rates], ticks, colour, ["—" if r is None else f"{r:.0%}" for r in rates],
                  f"{name}<br>%{{y}}: %{{x:.1%}}<extra></extra>") for name, rates, colour in series]
    more = f" (the {len(ticks)} most injected of {data['steps_total']})" if data["steps_total"] > len(ticks) else ""
    title = "Per injected step (injections): flip and step-following rates" + more
    height = _height(len(ticks), per_row=22 * len(series), base=130, hi=900)
    return figure(bars, _layout(title, height, xtitle="rate", barmode="group", bargap=0.25, bargroupgap=0.05))
