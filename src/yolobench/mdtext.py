"""Run-file strings as literal Markdown text: the one escaping helper of report.md and `yolobench machines`.

Its own module, with nothing but the standard library, because CI's machines job runs `yolobench machines`
with numpy, PyYAML and filelock only (the report package pulls in matplotlib and OpenCV).
"""

from __future__ import annotations

import re
from typing import Any

# A run file's strings (its commit's branch, the machine's CPU and system, an engine's version, a cell's
# name) come from whoever wrote the file: in report.md each must read as the text it is, never become HTML, a
# link or an image, emphasis, a code span, a heading or a line of its own. md_text is the one place that
# makes them so. Ordinary names come out unchanged: only the characters that could start markup are escaped
# (an "_" inside a word, as in pruned_quant, starts none).
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")  # new lines, tabs and other control characters
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKUP = frozenset("\\`*[]~")


def md_text(value: Any, *, code: bool = False) -> str:
    """``value`` as literal text on one line of report.md. ``code``: for the inside of a code span, where
    nothing is markup and only a backtick (removed) would end the span."""
    text = _BREAKS.sub(" ", str(value))
    if code:
        return text.replace("`", "")
    out = []
    for i, char in enumerate(text):
        if char in _HTML:
            out.append(_HTML[char])
        elif char in _MARKUP or (char == "#" and i == 0):
            out.append("\\" + char)
        elif char == "_" and not (0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()):
            out.append("\\_")
        else:
            out.append(char)
    return "".join(out)
