"""Plotly figures for the demo: predictions and plain data in, figures out (no model, no gradio).

Every figure has an explicit height, horizontal bars (long label names stay readable on a phone) and
colour-blind-safe colours (Okabe-Ito). Text that may come from a user is HTML-escaped (``render.esc_html``),
since plotly interprets a few tags inside labels.
"""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from .render import TOP_LABELS, answer_under_step, esc_html, top_indices

# Okabe-Ito palette.
BLUE, ORANGE, GREEN, GREY, VERMILION, SKY = "#0072B2", "#E69F00", "#009E73", "#999999", "#D55E00", "#56B4E9"
FONT = dict(family="Inter, system-ui, -apple-system, Segoe UI, sans-serif", size=13)
MAX_LABEL = 38
TOP_STEPS = 8
SWEEP_LABELS = 8


def label(text: str, limit: int = MAX_LABEL) -> str:
    """A safe, short axis label."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return esc_html(text)


def _layout(fig: go.Figure, title: str, height: int, xtitle: str = "probability", **kw) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=15)),
        height=height,
        autosize=True,
        font=FONT,
        margin=dict(l=10, r=20, t=48, b=40),
        plot_bgcolor="white",
        paper_bgcolor="white",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1, title=None),
        **kw,
    )
    fig.update_xaxes(title=xtitle, range=[0, 1.05], gridcolor="#e5e5e5", zeroline=False, tickformat=".0%")
    fig.update_yaxes(automargin=True, autorange="reversed", ticks="", showgrid=False)
    return fig


def _height(rows: int, per_row: int = 30, base: int = 120, lo: int = 220, hi: int = 640) -> int:
    return max(lo, min(hi, base + per_row * rows))


def step_bars(steps: Sequence[str], probs: Sequence[float], chosen: str | None = None, title: str = "Step I: p(I | x)") -> go.Figure:
    """The top steps as horizontal bars; the generated step Î in orange."""
    colours = [ORANGE if s == chosen else SKY for s in steps]
    fig = go.Figure(
        go.Bar(
            x=list(probs),
            y=[label(s) for s in steps],
            orientation="h",
            marker_color=colours,
            text=[f"{p:.1%}" for p in probs],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    return _layout(fig, title, _height(len(steps)), showlegend=False)


def answer_bars(
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    answer: str | None = None,
    title: str = "Answer: top labels",
) -> go.Figure:
    """Grouped horizontal bars, one group per label and one bar per distribution; the answer's tick is bold."""
    colours = [GREY, BLUE, GREEN, VERMILION, ORANGE]
    ticks = [f"<b>★ {label(l)}</b>" if l == answer else label(l) for l in labels]
    fig = go.Figure()
    for (name, probs), colour in zip(series.items(), colours):
        fig.add_bar(
            x=list(probs),
            y=ticks,
            name=esc_html(name),
            orientation="h",
            marker_color=colour,
            text=[f"{p:.0%}" for p in probs],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=f"{esc_html(name)}<br>%{{y}}: %{{x:.2%}}<extra></extra>",
        )
    fig.update_layout(barmode="group", bargap=0.25, bargroupgap=0.05)
    return _layout(fig, title, _height(len(labels), per_row=24 * max(1, len(series)), base=130, hi=720))


def sweep_heatmap(steps: Sequence[str], labels: Sequence[str], probs: Sequence[Sequence[float]], chosen: str | None = None) -> go.Figure:
    """p(y | x, I) over every known step (rows) and the top labels (columns), with the values written in."""
    rows = [f"<b>{label(s, 30)} (Î)</b>" if s == chosen else label(s, 30) for s in steps]
    cols = [label(l, 22) for l in labels]
    fig = go.Figure(
        go.Heatmap(
            z=[list(r) for r in probs],
            x=cols,
            y=rows,
            zmin=0,
            zmax=1,
            colorscale="Blues",
            text=[[f"{p:.0%}" for p in r] for r in probs],
            texttemplate="%{text}",
            textfont=dict(size=11),
            hovertemplate="step %{y}<br>answer %{x}<br>p = %{z:.2%}<extra></extra>",
            colorbar=dict(title="p", tickformat=".0%", thickness=12),
        )
    )
    fig.update_layout(
        title=dict(text="Sweep: p(y | x, I) for every step I", x=0, xanchor="left", font=dict(size=15)),
        height=_height(len(steps), per_row=28, base=170, lo=280, hi=900),
        autosize=True,
        font=FONT,
        margin=dict(l=10, r=10, t=48, b=10),
        paper_bgcolor="white",
    )
    fig.update_xaxes(side="top", tickangle=-30, automargin=True)
    fig.update_yaxes(autorange="reversed", automargin=True)
    return fig


def placeholder(message: str, height: int = 220) -> go.Figure:
    """An empty figure with a message, for a chart that has nothing to show yet."""
    fig = go.Figure()
    fig.add_annotation(text=esc_html(message), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(color=GREY))
    fig.update_layout(height=height, autosize=True, font=FONT, margin=dict(l=10, r=10, t=10, b=10), paper_bgcolor="white", plot_bgcolor="white")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


# ---- figures of a prediction, an injection and a sweep -----------------------------------------
def step_figure(pred) -> go.Figure:
    if not pred.p_steps:
        return placeholder("this model has no intermediate step")
    idx = top_indices(pred.p_steps, TOP_STEPS)
    return step_bars([pred.steps[i] for i in idx], [pred.p_steps[i] for i in idx], pred.step)


def answer_figure(pred) -> go.Figure:
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


def comparison_figure(base, mine) -> go.Figure:
    idx = list(dict.fromkeys(top_indices(base.p_answer_step, 3) + top_indices(mine.p_answer_step, 3)))
    labels = [base.labels[i] for i in idx]
    series = {
        f"under Î: {base.step_words}": [base.p_answer_step[i] for i in idx],
        f"under yours: {_short(mine.step_words)}": [mine.p_answer_step[i] for i in idx],
    }
    return answer_bars(labels, series, answer_under_step(mine), title="p(y|x,step): model's step vs yours")


def sweep_figure(sw) -> go.Figure:
    """The sweep's heatmap: every step, the most likely first, and the labels that any step makes most likely."""
    order = top_indices(sw.p_steps, len(sw.steps))
    cols = sorted(range(len(sw.labels)), key=lambda j: -max(r[j] for r in sw.probs))[:SWEEP_LABELS]
    return sweep_heatmap([sw.steps[i] for i in order], [sw.labels[j] for j in cols],
                         [[sw.probs[i][j] for j in cols] for i in order], chosen=sw.steps[order[0]])


# ---- an experiment's figures (plain data from cott_demo.experiment) -----------------------------
def injection_heatmap(data: dict, policy: str = "") -> go.Figure:
    """Injected step (rows) -> the step the answer belongs to (columns), as each row's share of its injections."""
    if not data["steps"]:
        return placeholder("no step was injected")
    rows = [label(s, 30) for s in data["steps"]]
    cols = [label(c, 22) for c in data["columns"]]
    shares, counts = data["shares"], data["counts"]
    what = "the step the answer belongs to" if data["hierarchy"] else "the answer"
    more = f" (the {len(rows)} most injected of {data['steps_total']})" if data["steps_total"] > len(rows) else ""
    fig = go.Figure(
        go.Heatmap(
            z=[list(r) for r in shares],
            x=cols,
            y=rows,
            zmin=0,
            zmax=1,
            colorscale="Blues",
            customdata=[list(r) for r in counts],
            text=[[f"{p:.0%}" if n else "" for p, n in zip(r, c)] for r, c in zip(shares, counts)],
            texttemplate="%{text}",
            textfont=dict(size=11),
            hovertemplate="injected %{y}<br>answer in %{x}<br>%{z:.1%} (%{customdata} injections)<extra></extra>",
            colorbar=dict(title="share", tickformat=".0%", thickness=12),
        )
    )
    title = f"Injected step → {what}" + (f" ({esc_html(policy)})" if policy else "") + more
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=15)),
        height=_height(len(rows), per_row=28, base=220, lo=320, hi=900),
        autosize=True,
        font=FONT,
        margin=dict(l=10, r=10, t=48, b=10),
        paper_bgcolor="white",
    )
    fig.update_xaxes(side="bottom", tickangle=-40, automargin=True, title=what)
    fig.update_yaxes(autorange="reversed", automargin=True, title="injected step")
    return fig


def rate_bars(data: dict) -> go.Figure:
    """Flip rate and step-following rate per injected step (grouped horizontal bars, the most injected first)."""
    if not data["steps"]:
        return placeholder("no step was injected")
    ticks = [f"{label(s, 30)} ({n:,})" for s, n in zip(data["steps"], data["injections"])]
    series = [("flip rate", data["flip_rate"], VERMILION)]
    if any(r is not None for r in data["following_rate"]):
        series.append(("step-following rate", data["following_rate"], GREEN))
    fig = go.Figure()
    for name, rates, colour in series:
        fig.add_bar(
            x=[r or 0 for r in rates],
            y=ticks,
            name=name,
            orientation="h",
            marker_color=colour,
            text=["—" if r is None else f"{r:.0%}" for r in rates],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=f"{name}<br>%{{y}}: %{{x:.1%}}<extra></extra>",
        )
    fig.update_layout(barmode="group", bargap=0.25, bargroupgap=0.05)
    more = f" (the {len(ticks)} most injected of {data['steps_total']})" if data["steps_total"] > len(ticks) else ""
    title = "Per injected step (injections): flip and step-following rates" + more
    return _layout(fig, title, _height(len(ticks), per_row=22 * len(series), base=130, hi=900), xtitle="rate")
