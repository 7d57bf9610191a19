"""hailo_qa.evaluate.compare: ordering of checks, tolerance policies, the report table and serialisation."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hailo_qa.errors import InputDataError
from hailo_qa.evaluate.compare import CompareResult, OutputCompare, assert_outputs_equal, compare_outputs
from tests.strategies import float_tensors, output_dicts


def _two(**over):
    ref = {"logits": np.array([[1.0, 2.0, 3.0, 4.0]], np.float32), "labels": np.array([3, 1], np.int64)}
    test = {k: v.copy() for k, v in ref.items()}
    test.update(over)
    return ref, test


class TestStructure:
    def test_identical_passes(self):
        ref, test = _two()
        r = compare_outputs(ref, test)
        assert r and r.passed and not r.problems
        assert [o.status for o in r.outputs] == ["ok", "ok"]
        assert r["logits"].cosine == 1.0 and r["logits"].max_abs_err == 0.0

    def test_count_and_names(self):
        ref, test = _two()
        test["extra"] = np.zeros(1)
        r = compare_outputs(ref, test)
        assert not r
        assert any("count differs: ref has 2 outputs, test has 3" in p for p in r.problems)
        assert r["extra"].status == "extra"
        assert [o.status for o in r.outputs[:2]] == ["ok", "ok"]

    def test_renamed_output_is_missing_with_hint(self):
        ref, test = _two()
        test["logit"] = test.pop("logits")
        r = compare_outputs(ref, test)
        assert not r and r.ref_count == r.test_count == 2
        assert r["logits"].status == "missing" and "did you mean 'logit'" in r["logits"].reason
        assert r["logit"].status == "extra"
        assert not any("count" in p for p in r.problems) and any("names differ" in p for p in r.problems)

    def test_shape_checked_before_dtype(self):
        ref, test = _two(logits=np.zeros((1, 5), np.float16))
        o = compare_outputs(ref, test)["logits"]
        assert o.status == "shape" and o.max_abs_err is None and o.total == 0

    def test_dtype_checked_before_values(self):
        ref, test = _two(logits=np.array([[1, 2, 3, 4]], np.float64))
        o = compare_outputs(ref, test)["logits"]
        assert o.status == "dtype" and "float32" in o.reason and "float64" in o.reason

    def test_not_a_mapping(self):
        with pytest.raises(InputDataError, match="mapping"):
            compare_outputs(np.zeros(3), {"a": np.zeros(3)})


class TestValues:
    def test_bit_exact_by_default(self):
        x = np.array([1.0, 2.0, 3.0], np.float32)
        y = x.copy()
        y[1] = np.nextafter(y[1], np.float32(3))  # one ulp
        o = compare_outputs({"y": x}, {"y": y})["y"]
        assert o.status == "values" and o.mismatches == 1 and o.total == 3
        assert o.first_index == (1,) and o.first_ref == 2.0 and o.first_test == float(y[1])
        assert 0 < o.max_abs_err < 1e-6

    def test_nan_in_same_positions_is_equal(self):
        x = np.array([1.0, np.nan, 3.0, np.inf, -np.inf], np.float32)
        r = compare_outputs({"y": x}, {"y": x.copy()})
        assert r and r["y"].max_abs_err == 0.0 and r["y"].cosine == 1.0
        r2 = compare_outputs({"y": x}, {"y": x.copy()}, min_cosine=0.99)
        assert r2

    def test_nan_in_one_side_fails(self):
        x = np.array([1.0, 2.0], np.float32)
        y = np.array([1.0, np.nan], np.float32)
        for kw in ({}, {"atol": 1.0}, {"min_cosine": 0.1}):
            o = compare_outputs({"y": x}, {"y": y}, **kw)["y"]
            assert not o and math.isnan(o.max_abs_err), kw

    def test_negative_zero_equals_zero(self):
        assert compare_outputs({"y": np.array([0.0])}, {"y": np.array([-0.0])})

    def test_atol_rtol(self):
        ref = {"y": np.array([1.0, 100.0], np.float32)}
        test = {"y": np.array([1.05, 100.5], np.float32)}
        assert not compare_outputs(ref, test, atol=0.01)
        assert compare_outputs(ref, test, atol=0.06, rtol=0.005)
        assert compare_outputs(ref, test, atol=0.5)
        o = compare_outputs(ref, test, rtol=0.01)["y"]  # 0.05 > 0.01*1: first element fails
        assert o.status == "values" and o.mismatches == 1 and o.first_index == (0,)

    def test_integers_exact_without_wraparound(self):
        a = {"q": np.array([0, 255], np.uint8)}
        b = {"q": np.array([255, 255], np.uint8)}
        o = compare_outputs(a, b)["q"]
        assert o.status == "values" and o.max_abs_err == 255.0
        assert compare_outputs(a, b, atol=255)

    def test_min_cosine_replaces_bit_exact_when_no_tolerance(self):
        ref = {"e": np.array([1.0, 2.0, 3.0], np.float32)}
        test = {"e": np.array([1.01, 2.0, 3.0], np.float32)}
        assert compare_outputs(ref, test, min_cosine=0.999)
        o = compare_outputs(ref, test, min_cosine=0.999999999)["e"]
        assert o.status == "cosine" and "cosine similarity" in o.reason
        # with an explicit atol both checks apply
        assert compare_outputs(ref, test, atol=0.001, min_cosine=0.5)["e"].status == "values"

    def test_per_output_policies(self):
        ref = {"a": np.zeros(3, np.float32), "b": np.zeros(3, np.float32)}
        test = {"a": np.full(3, 0.1, np.float32), "b": np.full(3, 0.1, np.float32)}
        r = compare_outputs(ref, test, atol={"": 0.0, "a": 0.2})
        assert r["a"] and not r["b"] and r["a"].atol == 0.2 and r["b"].atol == 0.0
        assert compare_outputs(ref, test, atol={"": 0.5})
        r = compare_outputs(ref, test, atol={"a": 0.2})  # no default key: others stay bit-exact
        assert r["a"] and not r["b"]

    @pytest.mark.parametrize("kw, match", [
        ({"atol": {"logitz": 1.0}}, "did you mean 'logits'"),
        ({"atol": -1.0}, "atol"),
        ({"rtol": math.nan}, "rtol"),
        ({"min_cosine": 1.5}, "min_cosine"),
        ({"atol": "0.1"}, "type str"),
    ], ids=["unknown-name", "negative", "nan", "cosine>1", "string"])
    def test_bad_policies(self, kw, match):
        ref, test = _two()
        with pytest.raises(InputDataError, match=match):
            compare_outputs(ref, test, **kw)

    def test_empty_and_nonnumeric(self):
        assert compare_outputs({"e": np.zeros((0, 4), np.float32)}, {"e": np.zeros((0, 4), np.float32)})
        s = {"s": np.array(["a", "b"])}
        assert compare_outputs(s, {"s": np.array(["a", "b"])})
        o = compare_outputs(s, {"s": np.array(["a", "c"])})["s"]
        assert o.status == "values" and o.first_index == (1,) and o.first_test == "c"


class TestProperties:
    @given(output_dicts())
    def test_self_comparison_passes(self, outs):
        r = compare_outputs(outs, {k: v.copy() for k, v in outs.items()})
        assert r, str(r)
        assert all(o.mismatches == 0 and o.total == np.asarray(outs[o.name]).size for o in r.outputs)

    @given(float_tensors(dtype=np.float32), st.data())
    def test_single_change_is_located(self, x, data):
        i = data.draw(st.integers(0, x.size - 1))
        y = x.copy()
        y.flat[i] = x.flat[i] + np.float32(max(1.0, abs(float(x.flat[i]))))
        o = compare_outputs({"x": x}, {"x": y})["x"]
        assert o.status == "values" and o.mismatches == 1
        assert o.first_index == tuple(int(v) for v in np.unravel_index(i, x.shape))
        assert o.max_abs_err == pytest.approx(abs(float(y.flat[i]) - float(x.flat[i])))

    @given(output_dicts())
    def test_dict_roundtrip(self, outs):
        test = {k: (v + 1 if v.dtype.kind == "f" else v) for k, v in outs.items()}
        r = compare_outputs(outs, test)
        text = json.dumps(r.to_dict())
        back = CompareResult.from_dict(json.loads(text))
        assert back.to_dict() == json.loads(text)
        assert bool(back) == bool(r) and str(back) == str(r)


class TestReport:
    def test_table_contents(self):
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        y = x.copy()
        y[1, 2] = 99
        r = compare_outputs({"feat": x}, {"feat": y})
        s = str(r)
        assert s.startswith("compare: FAIL") and "count: ref 1, test 1" in s
        for piece in ("feat", "(2, 4)", "float32", "1 / 8 (12.50%)", "FAIL:values", "[1, 2]: ref=6 test=99",
                      "max abs", "mean abs", "cosine", "93"):
            assert piece in s, piece
        assert r.summary() == "compare: FAIL (failed: feat [values])"

    def test_pass_summary(self):
        ref, test = _two()
        assert str(compare_outputs(ref, test)).startswith("compare: PASS (2 outputs)")

    def test_assert_helper(self):
        ref, test = _two(logits=np.array([[1.0, 2.0, 3.0, 5.0]], np.float32))
        with pytest.raises(AssertionError) as ei:
            assert_outputs_equal(ref, test, msg="mymodel vs onnxruntime")
        text = str(ei.value)
        assert text.startswith("mymodel vs onnxruntime\ncompare: FAIL") and "[0, 3]: ref=4 test=5" in text
        assert assert_outputs_equal(ref, test, atol=1.0)

    def test_from_dict_rejects_foreign_records(self):
        with pytest.raises(InputDataError, match="not a CompareResult"):
            CompareResult.from_dict({"outputs": []})
        good = compare_outputs(*_two()).to_dict()
        with pytest.raises(InputDataError, match="version"):
            CompareResult.from_dict({**good, "version": 99})
        bad = {**good, "outputs": [{**good["outputs"][0], "colour": 1}]}
        with pytest.raises(InputDataError, match="unknown keys"):
            CompareResult.from_dict(bad)

    def test_output_compare_is_frozen(self):
        o = compare_outputs(*_two())["logits"]
        assert isinstance(o, OutputCompare)
        with pytest.raises(AttributeError):
            o.status = "bad"  # type: ignore[misc]
