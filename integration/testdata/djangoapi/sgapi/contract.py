"""The Django side of the randomized data contract round trip
(integration/contract_roundtrip_test.go): pseudo-random values Django can
store (those its own JSONSerializer gives back equal), what PHP makes of
them (docs/protocol.md section 1), and an exact comparison."""

import math
import random
import re
import struct

from sessiongate_django import protocol

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]*)\Z")


def _char(rnd):
    c = rnd.randrange(6)
    if c == 0:
        return rnd.choice(["\u2028", "\u2029", "\ufeff", "\U0001F600", "\U0010FFFF", "\ufffd", "\uffff", "\0",
                           "\x7f", '"', "\\", "/", "\n", "\x01", "\x85", "\u00e9", "e\u0301", "</script>"])
    if c == 1:
        return chr(rnd.randrange(0x80, 0x800))
    if c == 2:
        x = rnd.randrange(0x800, 0x10000)
        return "A" if 0xD800 <= x <= 0xDFFF else chr(x)
    if c == 3:
        return chr(rnd.randrange(0x10000, 0x110000))
    return chr(rnd.randrange(0, 128))


def _string(rnd):
    c = rnd.randrange(8)
    if c == 0:
        return rnd.choice(["", "0", "1", "01", "-0", "1.0", " 1", "9223372036854775808", "__php__", "null"])
    if c == 1 and rnd.randrange(20) == 0:
        return _char(rnd) * rnd.randrange(1000, 9000)
    return "".join(_char(rnd) for _ in range(rnd.randrange(10)))


def _key(rnd):
    c = rnd.randrange(5)
    if c == 0:
        return rnd.choice(["1", "01", "-0", "0", "", "9223372036854775807", "9223372036854775808",
                           "-9223372036854775808", "-9223372036854775809", "__php__", "__php__b64",
                           "__php_session__", " ", "1.5", "+1", "-1", "00"])
    if c == 1:
        return str(rnd.randrange(-5, 10))
    if c == 2:
        return _string(rnd)
    return "k%d" % rnd.randrange(5)


def _float(rnd):
    c = rnd.randrange(5)
    if c == 0:
        return rnd.choice([-0.0, 0.0, 1.0, -1.0, 0.1, 1e300, -1e300, 5e-324, -5e-324, 2.2250738585072014e-308,
                           1.7976931348623157e308, 1e15, 1e16, 1e17, 1e-4, 1e-5, 0.30000000000000004,
                           9007199254740993.0, 3.0, 1e22, 123456789.0])
    if c == 1:  # any finite bit pattern
        while True:
            f = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
            if math.isfinite(f):
                return f
    if c == 2:
        return rnd.random() * 10 ** rnd.randrange(-30, 30)
    return float(rnd.randrange(-10**6, 10**6))


def _value(rnd, d=0):
    k = rnd.randrange(9 if d < 6 else 6)
    if k == 0:
        return rnd.choice([None, True, False])
    if k == 1:
        return rnd.choice([0, 1, -1, 2**53, 2**53 + 1, -(2**53 + 1), INT64_MAX, INT64_MIN, 2**63, INT64_MIN - 1,
                           2**64, 2**70, 10**30, rnd.randrange(INT64_MIN, INT64_MAX), rnd.randrange(-1000, 1000)])
    if k == 2:
        return _float(rnd)
    if k in (3, 4):
        return _string(rnd)
    if k in (5, 6):
        n = rnd.randrange(6)
        if rnd.randrange(2):
            return [_value(rnd, d + 1) for _ in range(n)]
        out = {}
        for _ in range(n):
            out[_key(rnd)] = _value(rnd, d + 1)
        if len(out) == 1 and next(iter(out)) in ("__php__", "__php__b64"):
            out["x"] = 1  # alone, the member would be a PHP tag
        return out
    if k == 7:  # deep
        v = _string(rnd)
        for _ in range(rnd.randrange(1, 50)):
            v = rnd.choice([[v], {"a": v}, {"0": v}])
        return v
    # a dict whose keys are integers in order: a PHP list when they start at 0
    start = rnd.choice([0, 0, 1, -1])
    return {str(start + i): _value(rnd, d + 1) for i in range(rnd.randrange(4))}


def values(seed, n):
    """n values for seed, each one PHP can be given (the depth limit)."""
    rnd = random.Random(seed)
    out = []
    while len(out) < n:
        v = _value(rnd)
        try:
            protocol.check_php_limits({"v": [v]}, protocol.dumps({"v": [v]}))
        except ValueError:
            continue
        out.append(v)
    return out


def _php_key(k):
    # (len first: int() refuses over 4300 digits)
    if len(k) <= 20 and _CANONICAL_INT.match(k) and k != "-0" and INT64_MIN <= int(k) <= INT64_MAX:
        return int(k)
    return None


def php_model(v):
    """v as PHP writes it back after changing it: an integer beyond int64
    a float, an object whose keys are 0..n-1 in order (or none) a list."""
    if isinstance(v, bool) or v is None or isinstance(v, (str, float)):
        return v
    if isinstance(v, int):
        return v if INT64_MIN <= v <= INT64_MAX else float(v)
    if isinstance(v, list):
        return [php_model(x) for x in v]
    if [_php_key(k) for k in v] == list(range(len(v))):
        return [php_model(x) for x in v.values()]
    return {k: php_model(x) for k, x in v.items()}


def same(a, b):
    """Exact equality: types, member order, the sign of a zero."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def poked(v):
    """v after contract_rt.php?op=copy&poke=1: an array gets the key
    "__poked" (a list becomes a dict, as PHP's array then has a key that
    is not an index), and everything else in it stays Django's."""
    if isinstance(v, dict):
        return dict(v, __poked=1)
    if isinstance(v, list):
        d = {str(i): x for i, x in enumerate(v)}
        d["__poked"] = 1
        return d
    return v
