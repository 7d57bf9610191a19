"""Compare two sets of named outputs: count → names → shape → dtype → values, with a report a person can read.

The default is **bit-exact**: ``atol=0, rtol=0`` passes only when every element is equal (``==``; NaN in the same
position on both sides counts as equal, ``-0.0 == +0.0``). Tolerances relax the value check element-wise as
``|test − ref| <= atol + rtol·|ref|`` (``numpy.isclose`` semantics, ``ref`` is the reference). ``min_cosine`` adds
a whole-output cosine-similarity floor; when it is set for an output whose ``atol`` and ``rtol`` are both 0, the cosine
floor *replaces* the bit-exact element check for that output (so ``compare_outputs(a, b, min_cosine=0.999)`` means
"cosine ≥ 0.999", not "bit-exact and cosine ≥ 0.999").

Each of ``atol``, ``rtol`` and ``min_cosine`` may be a number or a dict per output name with ``""`` as the default
key (Polygraphy's convention)::

    compare_outputs(ref, test, atol={"": 0.0, "boxes": 1e-3}, min_cosine={"logits": 0.999})

Example:
    >>> import numpy as np
    >>> r = compare_outputs({"y": np.ones(3, np.float32)}, {"y": np.ones(3, np.float32)})
    >>> bool(r)
    True
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from hailo_qa.errors import InputDataError, did_you_mean
from hailo_qa.evaluate import metrics

__all__ = ["CompareResult", "OutputCompare", "assert_outputs_equal", "compare_outputs"]

Tol = Union[float, Mapping[str, float], None]
_TAG = "hailo_qa.CompareResult"
_VERSION = 1


@dataclass(frozen=True)
class OutputCompare:
    """The comparison of one output.

    Attributes:
        name: output name.
        status: the first check that failed, or ``"ok"``: ``"missing"`` (absent from test), ``"extra"`` (absent
            from ref), ``"shape"``, ``"dtype"``, ``"values"`` (element-wise tolerance) or ``"cosine"``.
        reason: one sentence for a failure, ``""`` when it passed.
        ref_shape / test_shape: shapes (``None`` when the output is absent on that side).
        ref_dtype / test_dtype: dtype names (``None`` when absent).
        total: number of elements compared (0 when values were not compared).
        mismatches: elements outside ``atol + rtol·|ref|`` (exactly unequal when both are 0).
        max_abs_err / mean_abs_err: over all elements (NaN when one side alone has NaN there); ``None`` when values
            were not compared.
        cosine: cosine similarity of the flattened outputs (``None`` when not compared).
        first_index: index of the first mismatching element (``None`` when none) and ``first_ref``/``first_test``,
            the two values there.
        atol / rtol / min_cosine: the tolerances applied to this output.
    """

    name: str
    status: str
    reason: str = ""
    ref_shape: tuple[int, ...] | None = None
    test_shape: tuple[int, ...] | None = None
    ref_dtype: str | None = None
    test_dtype: str | None = None
    total: int = 0
    mismatches: int = 0
    max_abs_err: float | None = None
    mean_abs_err: float | None = None
    cosine: float | None = None
    first_index: tuple[int, ...] | None = None
    first_ref: Any = None
    first_test: Any = None
    atol: float = 0.0
    rtol: float = 0.0
    min_cosine: float | None = None

    @property
    def passed(self) -> bool:
        return self.status == "ok"

    def __bool__(self) -> bool:
        return self.passed

    @property
    def mismatch_pct(self) -> float:
        return 100.0 * self.mismatches / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("ref_shape", "test_shape", "first_index"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "OutputCompare":
        kw = dict(d)
        unknown = set(kw) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputDataError(f"OutputCompare.from_dict: unknown keys {sorted(unknown)}.",
                                 note=f"expected keys among {sorted(cls.__dataclass_fields__)}.",
                                 hint="the file was written by a different hailo-qa version, or edited by hand.")
        for k in ("ref_shape", "test_shape", "first_index"):
            if kw.get(k) is not None:
                kw[k] = tuple(int(v) for v in kw[k])
        return cls(**kw)


@dataclass(frozen=True)
class CompareResult:
    """The comparison of two output sets. Truthy when every output passed and the sets match structurally.

    Attributes:
        outputs: one :class:`OutputCompare` per output name (reference order, then names only in ``test``).
        ref_count / test_count: number of outputs on each side.
        problems: structural problems (count or name mismatches), one sentence each.
    """

    outputs: tuple[OutputCompare, ...]
    ref_count: int
    test_count: int
    problems: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.problems and all(o.passed for o in self.outputs)

    def __bool__(self) -> bool:
        return self.passed

    def __getitem__(self, name: str) -> OutputCompare:
        for o in self.outputs:
            if o.name == name:
                return o
        raise KeyError(name)

    @property
    def failed(self) -> tuple[OutputCompare, ...]:
        return tuple(o for o in self.outputs if not o.passed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict with a type tag (NaN/Inf stay Python floats; ``json`` writes them as NaN/Infinity)."""
        return {"type": _TAG, "version": _VERSION, "passed": self.passed, "ref_count": self.ref_count,
                "test_count": self.test_count, "problems": list(self.problems),
                "outputs": [o.to_dict() for o in self.outputs]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CompareResult":
        """Rebuild a result written by :meth:`to_dict`.

        Raises:
            InputDataError: the dict is not a CompareResult of a known version.
        """
        if not isinstance(d, Mapping) or d.get("type") != _TAG:
            raise InputDataError("CompareResult.from_dict: not a CompareResult record.",
                                 note=f"expected a dict with type={_TAG!r}.",
                                 hint="pass the dict written by CompareResult.to_dict().")
        if d.get("version") != _VERSION:
            raise InputDataError(f"CompareResult.from_dict: version {d.get('version')!r} is not supported.",
                                 note=f"expected version {_VERSION}.")
        try:
            return cls(outputs=tuple(OutputCompare.from_dict(o) for o in d["outputs"]),
                       ref_count=int(d["ref_count"]), test_count=int(d["test_count"]),
                       problems=tuple(str(p) for p in d.get("problems", ())))
        except (KeyError, TypeError, ValueError) as err:
            raise InputDataError(f"CompareResult.from_dict: malformed record ({err!r}).",
                                 note="expected the dict written by CompareResult.to_dict().") from err

    def summary(self) -> str:
        """One line: PASS/FAIL, how many outputs failed."""
        if self.passed:
            return f"compare: PASS ({len(self.outputs)} outputs)"
        bad = ", ".join(f"{o.name} [{o.status}]" for o in self.failed)
        parts = list(self.problems) + ([f"failed: {bad}"] if bad else [])
        return "compare: FAIL (" + "; ".join(parts) + ")"

    def __str__(self) -> str:
        head = [self.summary(), f"count: ref {self.ref_count}, test {self.test_count}"]
        cols = ("output", "status", "shape", "dtype", "mismatches", "max abs", "mean abs", "cosine", "tolerance",
                "first difference")
        rows = [cols]
        for o in self.outputs:
            shape = _pair_str(o.ref_shape, o.test_shape, lambda s: str(tuple(s)))
            dtype = _pair_str(o.ref_dtype, o.test_dtype, str)
            mism = f"{o.mismatches} / {o.total} ({o.mismatch_pct:.2f}%)" if o.max_abs_err is not None else "-"
            tol = f"atol={o.atol:g} rtol={o.rtol:g}" + (f" cos>={o.min_cosine:g}" if o.min_cosine is not None else "")
            first = "-"
            if o.first_index is not None:
                first = f"{list(o.first_index)}: ref={_num(o.first_ref)} test={_num(o.first_test)}"
            rows.append((o.name, o.status if o.passed else f"FAIL:{o.status}", shape, dtype, mism,
                         _num(o.max_abs_err), _num(o.mean_abs_err), _num(o.cosine, cos=True), tol, first))
        widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        reasons = [f"  {o.name}: {o.reason}" for o in self.outputs if o.reason]
        return "\n".join(head + lines + (["reasons:"] + reasons if reasons else []))


def _pair_str(a: Any, b: Any, fmt) -> str:
    if a is None and b is None:
        return "-"
    if a is None or b is None:
        return f"ref {fmt(a) if a is not None else '-'} / test {fmt(b) if b is not None else '-'}"
    return fmt(a) if a == b else f"ref {fmt(a)} / test {fmt(b)}"


def _num(v: Any, cos: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6f}" if cos and math.isfinite(v) else f"{float(v):.6g}"
    return repr(v)


def _policy(value: Tol, names: list[str], what: str, default: float | None) -> dict[str, float | None]:
    """Resolve a scalar-or-per-output tolerance into one value per output name."""
    if value is None or isinstance(value, (int, float, np.floating, np.integer)):
        one = None if value is None else float(value)
        out = {n: one for n in names}
    elif isinstance(value, Mapping):
        unknown = [k for k in value if k != "" and k not in names]
        if unknown:
            hints = [did_you_mean(k, names) for k in unknown]
            raise InputDataError(f"compare_outputs: {what} names unknown outputs {unknown}.",
                                 note=f"expected output names {names} or '' for the default.",
                                 hint=next((h for h in hints if h), "check the spelling of the output names."))
        dflt = value.get("", default)
        out = {n: (None if value.get(n, dflt) is None else float(value.get(n, dflt))) for n in names}
    else:
        raise InputDataError(f"compare_outputs: {what}={value!r} has type {type(value).__name__}.",
                             note="expected a number or a dict {output name or '': number}.")
    for n, v in out.items():
        if v is None:
            if what != "min_cosine":
                out[n] = default
            continue
        if math.isnan(v) or v < 0 or (what == "min_cosine" and v > 1):
            raise InputDataError(f"compare_outputs: {what} for {n!r} is {v}.",
                                 note="expected atol/rtol >= 0 and min_cosine in [0, 1]." if what != "min_cosine"
                                 else "expected min_cosine in [0, 1].")
    return out


def _as_mapping(x: Any, side: str) -> Mapping[str, Any]:
    if not isinstance(x, Mapping):
        raise InputDataError(f"compare_outputs: {side} is a {type(x).__name__}.",
                             note="expected a mapping {output name: array}, as returned by Runner.infer().",
                             hint="wrap a single array as {'output_name': array}.")
    return x


def _py(v: Any) -> Any:
    """A NumPy scalar as a plain Python value (for JSON)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def _compare_one(name: str, r: np.ndarray, t: np.ndarray, atol: float, rtol: float,
                 min_cos: float | None) -> OutputCompare:
    base = dict(name=name, ref_shape=tuple(int(s) for s in r.shape), test_shape=tuple(int(s) for s in t.shape),
                ref_dtype=str(r.dtype), test_dtype=str(t.dtype), atol=atol, rtol=rtol, min_cosine=min_cos)
    if r.shape != t.shape:
        return OutputCompare(status="shape", reason=f"shape differs: ref {r.shape}, test {t.shape}.", **base)
    if r.dtype != t.dtype:
        return OutputCompare(status="dtype", reason=f"dtype differs: ref {r.dtype}, test {t.dtype}.", **base)
    if r.dtype.kind not in "biuf":
        eq = r == t
        mism = ~np.asarray(eq, bool).reshape(r.shape)
        n_bad = int(mism.sum())
        first = tuple(int(i) for i in np.argwhere(mism)[0]) if n_bad else None
        return OutputCompare(status="values" if n_bad else "ok", total=int(r.size), mismatches=n_bad,
                             first_index=first, first_ref=_py(r[first]) if first else None,
                             first_test=_py(t[first]) if first else None,
                             reason=f"{n_bad} of {r.size} elements differ." if n_bad else "", **base)
    rf, tf = r.astype(np.float64), t.astype(np.float64)
    both_nan = np.isnan(rf) & np.isnan(tf)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(np.subtract(rf, tf, where=~both_nan, out=np.zeros_like(rf)))
    diff[rf == tf] = 0.0  # equal infinities: inf - inf would be NaN
    if atol == 0.0 and rtol == 0.0:
        close = (r == t) | both_nan
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.isclose(tf, rf, rtol=rtol, atol=atol, equal_nan=True)
    mism = ~close
    n_bad = int(mism.sum())
    first = tuple(int(i) for i in np.argwhere(mism)[0]) if n_bad else None
    keep = ~both_nan & ~(np.isinf(rf) & (rf == tf))  # matching NaN/Inf positions are equal, not noise
    cos = metrics.cosine_similarity(rf[keep], tf[keep], axis=None) if keep.any() else 1.0
    stats = dict(total=int(r.size), mismatches=n_bad,
                 max_abs_err=float(diff.max()) if diff.size else 0.0,
                 mean_abs_err=float(diff.mean()) if diff.size else 0.0, cosine=float(cos),
                 first_index=first, first_ref=_py(r[first]) if first is not None else None,
                 first_test=_py(t[first]) if first is not None else None)
    elementwise = not (min_cos is not None and atol == 0.0 and rtol == 0.0)
    if elementwise and n_bad:
        kind = "bit-exact" if atol == 0.0 and rtol == 0.0 else f"atol={atol:g} rtol={rtol:g}"
        return OutputCompare(status="values", reason=f"{n_bad} of {r.size} elements differ ({kind}); "
                             f"first at {list(first)}: ref={_num(stats['first_ref'])}, "
                             f"test={_num(stats['first_test'])}.", **base, **stats)
    if min_cos is not None and not (cos >= min_cos):
        return OutputCompare(status="cosine", reason=f"cosine similarity {_num(cos, cos=True)} < {min_cos:g}.",
                             **base, **stats)
    return OutputCompare(status="ok", **base, **stats)


def compare_outputs(ref: Mapping[str, Any], test: Mapping[str, Any], *, atol: Tol = 0.0, rtol: Tol = 0.0,
                    min_cosine: Tol = None) -> CompareResult:
    """Compare ``test`` outputs with ``ref`` outputs, name by name.

    Checks, in order: output count, names, then per output shape, dtype and values. An output that fails a check is
    not checked further (values of different shapes are not compared).

    Args:
        ref: reference outputs ``{name: array}``.
        test: outputs under test ``{name: array}``.
        atol: absolute tolerance, a number or ``{name or "": number}``. Defaults to 0.0 (with ``rtol=0``:
            bit-exact).
        rtol: relative tolerance (relative to ``|ref|``), same form. Defaults to 0.0.
        min_cosine: minimum cosine similarity of each flattened output, same form; ``None`` for no cosine check.
            With ``atol == rtol == 0`` for an output it replaces the bit-exact check there. Defaults to None.

    Returns:
        A :class:`CompareResult`; ``bool(result)`` says whether everything passed, ``str(result)`` is the table.

    Raises:
        InputDataError: an input is not a mapping, a tolerance is negative/NaN, or a tolerance dict names an
            unknown output.
    """
    ref, test = _as_mapping(ref, "ref"), _as_mapping(test, "test")
    ref_names, test_names = list(ref), list(test)
    all_names = ref_names + [n for n in test_names if n not in ref]
    atols = _policy(atol, all_names, "atol", 0.0)
    rtols = _policy(rtol, all_names, "rtol", 0.0)
    coss = _policy(min_cosine, all_names, "min_cosine", None)

    problems: list[str] = []
    if len(ref_names) != len(test_names):
        problems.append(f"count differs: ref has {len(ref_names)} outputs, test has {len(test_names)}")
    missing = [n for n in ref_names if n not in test]
    extra = [n for n in test_names if n not in ref]
    if missing or extra:
        msg = "names differ:"
        if missing:
            msg += f" missing in test {missing}"
        if extra:
            msg += f"{';' if missing else ''} only in test {extra}"
        problems.append(msg)

    outs: list[OutputCompare] = []
    for n in all_names:
        tol = dict(atol=atols[n], rtol=rtols[n], min_cosine=coss[n])
        if n not in test:
            r = np.asarray(ref[n])
            hint = did_you_mean(n, extra)
            outs.append(OutputCompare(name=n, status="missing", reason="missing in test." + (f" ({hint})" if hint else ""),
                                      ref_shape=tuple(r.shape), ref_dtype=str(r.dtype), **tol))
        elif n not in ref:
            t = np.asarray(test[n])
            outs.append(OutputCompare(name=n, status="extra", reason="only in test (not in ref).",
                                      test_shape=tuple(t.shape), test_dtype=str(t.dtype), **tol))
        else:
            outs.append(_compare_one(n, np.asarray(ref[n]), np.asarray(test[n]), atols[n], rtols[n], coss[n]))
    return CompareResult(outputs=tuple(outs), ref_count=len(ref_names), test_count=len(test_names),
                         problems=tuple(problems))


def assert_outputs_equal(ref: Mapping[str, Any], test: Mapping[str, Any], *, atol: Tol = 0.0, rtol: Tol = 0.0,
                         min_cosine: Tol = None, msg: str | None = None) -> CompareResult:
    """Assert that :func:`compare_outputs` passes; the failure message is the full per-output table.

    Args:
        ref, test, atol, rtol, min_cosine: as for :func:`compare_outputs`.
        msg: a first line for the failure message (e.g. which model and backend). Defaults to none.

    Returns:
        The (passing) :class:`CompareResult`.

    Raises:
        AssertionError: the outputs differ.
    """
    __tracebackhide__ = True
    result = compare_outputs(ref, test, atol=atol, rtol=rtol, min_cosine=min_cosine)
    if not result:
        raise AssertionError((msg + "\n" if msg else "") + str(result))
    return result
