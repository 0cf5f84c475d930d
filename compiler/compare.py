"""When a compiled output equals the interpreter's: the meaning of "exact".

Values must be equal, with one allowance: two floats are the same value if they agree
to 1e-9 relative (1e-12 absolute). The interpreter itself computes floats in float64
along program-dependent paths (2/3 - 1/3 gives 0.33333333333333326, 1/3 gives
0.3333333333333333), so bit-identical floats are not a meaningful target; every
float a compiled model outputs is the exact rational value rounded to float64.
"""

from __future__ import annotations

import math
from typing import Any, Sequence


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b and type(a) is type(b) if (isinstance(a, bool) and isinstance(b, bool)) else a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)     # the same "value", though nan != nan
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return a == b


def same_output(xs: Sequence[Any], ys: Sequence[Any]) -> bool:
    """Two output sequences are the same (elementwise `same_value`, equal lengths)."""
    return len(xs) == len(ys) and all(same_value(x, y) for x, y in zip(xs, ys))
