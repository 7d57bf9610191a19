"""One exception hierarchy, one message style.

Every user-facing error says what happened, then ``Note:`` (what was expected) and ``Hint:`` (how to fix it)::

    deimv2 | split: cut tensor '/model/foo' does not exist.
    Note: expected one of the graph's tensor names.
    Hint: did you mean '/model/foo_1', '/model/foo_2'?

``InternalError`` is deliberately *not* a ``QAError``: it marks a bug in hailo-qa, not in the user's input.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class QAError(Exception):
    """A user-facing error: what happened, what was expected, how to fix it.

    Args:
        what: what happened, one sentence.
        note: what was expected (rendered after ``Note:``). Defaults to none.
        hint: how to fix it (rendered after ``Hint:``). Defaults to none.
        context: where it happened, e.g. ``"deimv2 | split"``; prefixed to the message. Defaults to none.
    """

    def __init__(self, what: str, *, note: str | None = None, hint: str | None = None,
                 context: str | None = None) -> None:
        self.what = what
        self.note = note
        self.hint = hint
        self.context = context
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.context} | {self.what}" if self.context else self.what
        lines = [head]
        if self.note:
            lines.append(f"Note: {self.note}")
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:  # re-render so a context added later shows up
        return self.render()

    def with_context(self, context: str) -> "QAError":
        """Return self with ``context`` prefixed (keeps an existing, more specific context)."""
        self.context = f"{context} | {self.context}" if self.context else context
        self.args = (self.render(),)
        return self


class InputFileError(QAError):
    """A file given by the user is missing, unreadable, corrupt or of the wrong kind."""


class ManifestError(QAError):
    """The model manifest has an unknown key, a wrong type or names a missing file."""


class GraphError(QAError):
    """An ONNX graph cannot be analysed or split as asked (bad cut names, a cut that does not separate, ...)."""


class InputDataError(QAError):
    """Input or calibration data has the wrong names, shapes, dtype, range, or holds NaN/Inf."""


class ToolchainError(QAError):
    """A vendor tool (Dataflow Compiler, HailoRT) failed; the original error is chained (``raise ... from err``).

    Args:
        step: the pipeline step that failed (``parse``, ``optimize``, ``compile``, ``infer`` ...). Defaults to none.
    """

    def __init__(self, what: str, *, step: str | None = None, **kw) -> None:
        self.step = step
        if step and "context" not in kw:
            kw["context"] = step
        super().__init__(what, **kw)


class EnvironmentProblem(ToolchainError):
    """The machine is not set up for the vendor tool (sockets, permissions, env vars, missing GPU)."""


class DeviceError(ToolchainError):
    """A Hailo device is missing, incompatible, timed out or vanished."""


class RegressionError(QAError):
    """A metric regressed against its accepted baseline, or a golden comparison was refused."""


class InternalError(Exception):
    """A bug in hailo-qa itself. Not a QAError: please report it."""


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The ``n`` candidates closest to ``name`` (for "did you mean" hints)."""
    cands = list(candidates)
    found = difflib.get_close_matches(name, cands, n=n, cutoff=0.5)
    if not found:  # fall back to substring matches, which difflib misses for long ONNX paths
        low = name.lower()
        found = [c for c in cands if low in c.lower() or c.lower() in low][:n]
    return found


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A hint sentence naming the closest candidates, or an empty string."""
    found = closest(name, candidates)
    return "did you mean " + ", ".join(repr(f) for f in found) + "?" if found else ""
