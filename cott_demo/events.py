"""What every event handler shares: the errors shown to the user as a message, how they are shown, and figures as
the value of a ``gr.Plot``."""
from __future__ import annotations

import json

import gradio as gr
from gradio.components.plot import PlotData

from . import render
from .inputs import InputError

BAD_INPUT = (InputError, ValueError, TypeError)  # shown to the user as a message; the app keeps serving


def warn(err: Exception) -> str:
    """Show an error as a toast and return it as a status line."""
    gr.Warning(render.toast(err))
    return render.status_md(str(err))


def plot(fig: dict) -> PlotData:
    """A figure of ``cott_demo.plots`` (plotly's JSON as a dict) as a ``gr.Plot`` value, serialised once."""
    return PlotData(type="plotly", plot=json.dumps(fig))
