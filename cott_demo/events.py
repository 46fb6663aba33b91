"""What every event handler shares: the errors shown to the user as a message, and how they are shown."""
from __future__ import annotations

import gradio as gr

from . import render
from .inputs import InputError

BAD_INPUT = (InputError, ValueError, TypeError)  # shown to the user as a message; the app keeps serving


def warn(err: Exception) -> str:
    """Show an error as a toast and return it as a status line."""
    gr.Warning(render.toast(err))
    return render.status_md(str(err))
