"""The gateway <-> Django header contract (docs/protocol.md, section 5).

Pure Python, no Django: signing, verification, chunking and the JSON
encoding of the shared session. The Go side is wsgi/headers.go; both test
against wsgi/testdata/vectors.json.
"""

import base64
import binascii
import decimal
import hashlib
import hmac
import json
import re

KEY_PURPOSE = b"sessiongate:django-headers"
# Longest X-Sessiongate-Data-n value: gunicorn refuses header lines over
# 8190 bytes by default.
DATA_CHUNK = 8000
MAX_CHUNKS = 4096
# The gateway reads at most 10 MiB of response headers from the app
# (wsgi/transport.go maxResponseHeaderBytes) and answers 502 past that,
# dropping the change. A change is kept under this, which leaves the app's
# own headers 1 MiB.
MAX_CHANGE_HEADER_BYTES = 9 * 1024 * 1024
# uWSGI builds a response's status line and headers in one buffer of at
# most 65535 bytes, whatever its --buffer-size, and fails start_response()
# past it ("unable to add header to the response"): the client gets no
# answer, the gateway a dropped connection, and the change is lost.
UWSGI_MAX_RESPONSE_HEAD_BYTES = 65535
# Room left for the headers added once the middleware has answered: those
# of middlewares listed before it (SecurityMiddleware's, a CORS
# middleware's, their cookies).
UWSGI_HEAD_MARGIN = 2048


def header_bytes(headers):
    """The bytes of (name, value) header lines on the wire, "Name: value\\r\\n"."""
    return sum(len(k) + len(v) + len(": \r\n") for k, v in headers)


def response_head_bytes(status_code, headers, cookies=()):
    """The bytes of a response's status line, headers and Set-Cookie lines
    as a server writes them, the reason phrase counted long."""
    size = len("HTTP/1.1 %03d %s\r\n" % (status_code, "x" * 32))
    return size + header_bytes(headers) + header_bytes(("Set-Cookie", c) for c in cookies)


# What the gateway can give PHP (sessionbridge/phpserial DefaultLimits):
# past these it refuses every PHP request of the session with a 500.
PHP_MAX_DEPTH = 64  # open arrays/objects, the session itself being 1
PHP_MAX_VALUES = 1000000  # every value, containers included
# A request signed further than this from our clock is refused, unless the
# gateway's X-Sessiongate-Max-Age allows an older one (verify_request).
MAX_SKEW = 60
MIN_SECRET_LEN = 32
# Longest X-Sessiongate-Expiry the gateway keeps (10 years, wsgi/headers.go
# maxExpiry): it counts a longer one as this, and older gateways ignored the
# whole change over it, so the middleware never sends more.
MAX_EXPIRY = 10 * 365 * 24 * 3600

_HEX32 = re.compile(r"[0-9a-f]{32}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_DIGITS = re.compile(r"[0-9]{1,15}\Z")

# WSGI environ names of the request headers.
META_SESSION_ID = "HTTP_X_SESSIONGATE_SESSION_ID"
META_DATA_COUNT = "HTTP_X_SESSIONGATE_DATA_COUNT"
META_DATA = "HTTP_X_SESSIONGATE_DATA_"
META_NONCE = "HTTP_X_SESSIONGATE_NONCE"
META_TIMESTAMP = "HTTP_X_SESSIONGATE_TIMESTAMP"
META_SIGNATURE = "HTTP_X_SESSIONGATE_SIGNATURE"
META_FEATURES = "HTTP_X_SESSIONGATE_FEATURES"
META_MAX_AGE = "HTTP_X_SESSIONGATE_MAX_AGE"
META_MAX_AGE_SIGNATURE = "HTTP_X_SESSIONGATE_MAX_AGE_SIGNATURE"

# What this package's gateway understands beyond the protocol's first
# version (X-Sessiongate-Features); an older gateway sends none, and refuses
# a change that uses one.
ROTATE_CARRY = "rotate-carry"
EXPIRY_AT = "expiry-at"
LOGINS = "logins"
FEATURES = ROTATE_CARRY + " " + EXPIRY_AT + " " + LOGINS

# The report of the login hashes valid for users (docs/protocol.md section
# 5, "Logins"), and its bounds, which the gateway enforces too.
LOGINS_HEADER = "X-Sessiongate-Logins"
LOGINS_SIGNATURE_HEADER = "X-Sessiongate-Logins-Signature"
MAX_LOGIN_USERS = 32
MAX_LOGIN_HASHES = 8


# The response header by which the middleware tells the gateway that it
# handled the request, and what it made of the gateway's session headers:
# without it the gateway cannot tell a site whose MIDDLEWARE still has
# Django's own SessionMiddleware, or whose SESSIONGATE_SESSION_KEYS differs
# from the gateway's, from a working one, and users just look logged out on
# Django. The gateway removes it.
# The gateway's check of a backend: OPTIONS * with this header.
CHECK_META = "HTTP_X_SESSIONGATE_CHECK"
MARK_HEADER = "X-Sessiongate-Django"
MARK_OK = "ok"
# The reasons a request's session headers are refused (ProtocolError.kind),
# sent as "refused-<kind>".
REFUSED_MISSING = "missing"  # no gateway headers at all
REFUSED_SIGNATURE = "signature"  # no key verifies: SESSIONGATE_SESSION_KEYS differs
REFUSED_CLOCK = "clock"  # signed outside the window of this clock (MAX_SKEW, Max-Age)
REFUSED_MALFORMED = "malformed"  # mangled on the way


class ProtocolError(Exception):
    """A request whose session cannot be trusted. ``missing`` tells a
    request that carries no gateway headers at all (not through the gateway)
    from one whose headers are wrong (forged, stale, mangled); ``kind``
    (REFUSED_*) says which, for the gateway's log."""

    def __init__(self, reason, missing=False, kind=REFUSED_MALFORMED):
        super().__init__(reason)
        self.missing = missing
        self.kind = REFUSED_MISSING if missing else kind


class Verified:
    """A request's session as the gateway vouched for it."""

    __slots__ = ("session_id", "data", "key", "nonce", "features")

    def __init__(self, session_id, data, key, nonce, features=frozenset()):
        self.session_id = session_id  # "" when the client has no session
        self.data = data  # dict
        self.key = key  # the key that verified: it signs the answer
        self.nonce = nonce
        # What the gateway takes in the answer (X-Sessiongate-Features).
        # Not signed: only the gateway reaches the app with it (it drops a
        # client's copy), and a forged one could only make a gateway refuse
        # a change of the forger's own request.
        self.features = features


# What Go's strings.TrimSpace (unicode.IsSpace) trims around each entry of
# SESSIONGATE_SESSION_KEYS on the gateway. Python's str.strip() would also
# drop the ASCII separators \x1c-\x1f, which the gateway keeps in the key.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _secret_text(value):
    """An entry or the whole value as text whose surrogateescape encoding
    is the bytes the gateway reads: bytes (os.environb, a bytes setting) are
    decoded, never taken as their repr; a str from os.environ holds a byte
    that is not UTF-8 as a lone surrogate, which encodes back to it."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def parse_secrets(value):
    """SESSIONGATE_SESSION_KEYS as the gateway reads it: comma-separated,
    spaces around entries ignored, each at least 32 bytes, byte for byte
    what the gateway has. A list or tuple (a Django setting) is taken as the
    entries; bytes are taken as they are. Returns a list of bytes."""
    if isinstance(value, (list, tuple)):
        parts = [_secret_text(p).strip(_GO_SPACE) for p in value]
    else:
        parts = [p.strip(_GO_SPACE) for p in _secret_text(value).split(",")]
    if not parts or any(not p for p in parts):
        raise ValueError("SESSIONGATE_SESSION_KEYS has an empty entry")
    out = []
    for i, p in enumerate(parts):
        b = p.encode("utf-8", "surrogateescape")
        if len(b) < MIN_SECRET_LEN:
            raise ValueError(
                "SESSIONGATE_SESSION_KEYS: key %d is %d bytes, need at least %d"
                % (i + 1, len(b), MIN_SECRET_LEN)
            )
        out.append(b)
    return out


def derive_key(secret):
    """K = HMAC-SHA256(secret, "sessiongate:django-headers")."""
    return hmac.new(secret, KEY_PURPOSE, hashlib.sha256).digest()


def data_hash(data):
    return hashlib.sha256(data).hexdigest()


def mac(key, *parts):
    """hex(HMAC-SHA256(key, parts joined by newlines)): every signature of
    docs/protocol.md section 5."""
    msg = "\n".join(parts).encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def request_signature(key, nonce, timestamp, session_id, data):
    return mac(key, "sg1-req", nonce, timestamp, session_id, data_hash(data))


def response_signature(key, nonce, op, rotate, expiry, data):
    """``data`` is the written bytes for ``write``, b"" otherwise."""
    return mac(key, "sg1-resp", nonce, op, rotate, expiry, data_hash(data))


def logins_signature(key, nonce, value):
    return mac(key, "sg1-logins", nonce, value)


def max_age_signature(key, nonce, value):
    return mac(key, "sg1-age", nonce, value)


def _max_age(meta, key, nonce):
    """How many seconds in the past the request's timestamp may be: the
    gateway's X-Sessiongate-Max-Age when it is signed with the key that
    verified the request (the longest the gateway waits for an answer, set
    over MAX_SKEW for slow pages: a request queued that long behind busy
    workers is still the gateway's), else MAX_SKEW. A copy replayed
    directly to the server gets no more than the gateway allowed the
    original."""
    value = meta.get(META_MAX_AGE)
    sig = meta.get(META_MAX_AGE_SIGNATURE, "")
    if value is None or not _DIGITS.match(value) or not _HEX64.match(sig):
        return MAX_SKEW
    if not hmac.compare_digest(max_age_signature(key, nonce, value), sig):
        return MAX_SKEW
    return max(MAX_SKEW, int(value))


def _login_user_ok(user):
    """The gateway's store.ValidLoginUser."""
    b = user.encode("utf-8")
    return 0 < len(b) <= 255 and not any(c < 0x20 or c == 0x7F or c in b"{}" for c in b)


def _login_hash_ok(h):
    return 0 < len(h) <= 256 and all("!" <= c <= "~" for c in h) and "," not in h


def logins_headers(verified, users):
    """The signed report of the login hashes valid for each user: ``users``
    maps a user id (the session's _auth_user_id) to its hashes, current
    first, or to none when no login of the user is valid (deleted). A user
    the gateway could not take whole (an id or a hash it
    refuses, more than MAX_LOGIN_HASHES hashes: a part of them would end
    sessions Django still takes) is left out, and so are users past
    MAX_LOGIN_USERS: their other sessions stay logged in on PHP pages until
    their next Django page, as before."""
    entries = []
    for user, hashes in users.items():
        if (
            len(hashes) > MAX_LOGIN_HASHES
            or not all(_login_hash_ok(h) for h in hashes)
            or not _login_user_ok(user)
            or len(entries) == MAX_LOGIN_USERS
        ):
            continue
        entries.append(base64.b64encode(user.encode("utf-8")).decode("ascii") + ":" + ",".join(hashes))
    if not entries:
        return []
    value = " ".join(entries)
    return [
        (LOGINS_HEADER, value),
        (LOGINS_SIGNATURE_HEADER, logins_signature(verified.key, verified.nonce, value)),
    ]


def encode_chunks(data):
    """base64 of data cut in DATA_CHUNK pieces (at least one)."""
    enc = base64.b64encode(data).decode("ascii")
    chunks = [enc[i : i + DATA_CHUNK] for i in range(0, len(enc), DATA_CHUNK)]
    return chunks or [""]


def decode_chunks(get, prefix, count_name):
    """Joins and decodes the chunks ``get(prefix + n)`` announced by
    ``get(count_name)``."""
    count = get(count_name)
    if count is None or not _DIGITS.match(count):
        raise ProtocolError("bad or missing data count")
    n = int(count)
    if not 1 <= n <= MAX_CHUNKS:
        raise ProtocolError("bad data count %d" % n)
    parts = []
    for i in range(n):
        v = get(prefix + str(i))
        if v is None:
            raise ProtocolError("data chunk %d missing" % i)
        parts.append(v)
    try:
        return base64.b64decode("".join(parts).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as e:
        raise ProtocolError("data is not base64: %s" % e) from None


def _no_constant(name):
    raise ValueError("%s is not JSON" % name)


# json.loads with any keyword builds a new decoder on every call, a third
# of a small session's verification time: one decoder serves every request.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def loads(data):
    """The shared session object (a dict, member order kept)."""
    obj = _DECODER.decode(data.decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("session data is not a JSON object")
    return obj


# A UTF-16 surrogate pair, else a lone surrogate.
_SURROGATES = re.compile("[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")


def _surrogate_text(match):
    # A pair is the character it encodes, as any JSON reader takes the two
    # escapes; a lone one is no character: U+FFFD, which Go's encoding/json
    # makes of its escape too.
    s = match.group()
    if len(s) == 2:
        return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    return "\ufffd"


def dumps(obj):
    """UTF-8 JSON as the gateway stores it: compact, non-ASCII kept as is,
    no NaN/Infinity (not JSON; PHP could not read them). A str may hold
    lone surrogates (json.loads of a client's "\\ud800" keeps one), which
    UTF-8 cannot carry and Django's JSONSerializer stores as escapes: they
    become U+FFFD, what the gateway's Go and PHP would read of them."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Only here: the common session pays nothing for the search.
        return _SURROGATES.sub(_surrogate_text, text).encode("utf-8")


# The member names docs/protocol.md reserves for PHP's tags: a PHP value
# JSON cannot hold, and a whole linked PHP session.
_TAG_KEYS = ("__php__", "__php__b64")
_SESSION_TAG_KEYS = ("__php_session__", "__php_session__b64")


def _scalar_tag(c):
    # {"__php__": "..."}: the one container the gateway lets past the
    # depth limit (a PHP scalar it could not put in JSON).
    if not isinstance(c, dict) or len(c) != 1:
        return False
    (k, v), = c.items()
    return k in _TAG_KEYS and isinstance(v, str)


# The most text the gateway gives PHP for a session (sessionbridge/phpserial
# DefaultLimits' MaxBytes): a write whose PHP text is longer is refused by
# the gateway with a 500.
PHP_MAX_TEXT = 16 * 1024 * 1024
# PHP's text of a JSON value is at most 7.5 times as long (0 in a list of a
# million: "0," is "i:1000000;i:0;"): below PHP_MAX_TEXT / 8 bytes of JSON
# no session needs measuring.
_PHP_TEXT_PER_JSON_BYTE = 8
_NUMERIC_KEY = re.compile(r"(0|-?[1-9][0-9]{0,18})\Z")


def php_text_size(obj):
    """The length of the php_serialize text the gateway gives PHP for the
    session ``obj`` (sessionbridge/phpserial EncodeSession): exact for
    JSON's values; a PHP tag counts as its text (the gateway may renumber
    its references, a few digits)."""
    whole = _tag_text(obj, _SESSION_TAG_KEYS)
    if whole is not None:
        return whole
    size = 0
    stack = [obj]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            n = len(v.encode("utf-8", "surrogatepass"))
            size += 6 + len(str(n)) + n  # s:N:"...";
        elif v is None:
            size += 2  # N;
        elif isinstance(v, bool):
            size += 4  # b:1;
        elif isinstance(v, int):
            if -(2**63) <= v < 2**63:
                size += 3 + len(str(v))  # i:N;
            else:
                size += 3 + len(_php_float(float(v)))
        elif isinstance(v, float):
            size += 3 + len(_php_float(v))  # d:...;
        elif isinstance(v, dict):
            tag = _tag_text(v, _TAG_KEYS)
            if tag is not None:
                size += tag
                continue
            size += 5 + len(str(len(v)))  # a:N:{}
            for k, item in v.items():
                k = k if isinstance(k, str) else _member_name(k)
                if _NUMERIC_KEY.match(k) and -(2**63) <= int(k) < 2**63:
                    size += 3 + len(k)  # i:N;
                else:
                    stack.append(k)
                stack.append(item)
        elif isinstance(v, (list, tuple)):
            size += 5 + len(str(len(v)))
            for i, item in enumerate(v):
                size += 3 + len(str(i))
                stack.append(item)
    return size


def _tag_text(v, names):
    # The length of the PHP text a tag of one of names holds, or None.
    if not isinstance(v, dict) or len(v) != 1:
        return None
    (k, text), = v.items()
    if k not in names or not isinstance(text, str):
        return None
    if k.endswith("b64"):
        return len(text) * 3 // 4 - text[-2:].count("=")
    return len(text.encode("utf-8", "surrogatepass"))


def _php_float(f):
    # PHP's serialize() of a float (serialize_precision -1), as the
    # gateway writes it (phpserial's appendPHPFloat).
    if f != f:
        return "NAN"
    if f in (float("inf"), float("-inf")):
        return "INF" if f > 0 else "-INF"
    sign, dig, exp = decimal.Decimal(repr(f)).as_tuple()
    neg = "-" if sign else ""
    digits = "".join(map(str, dig)).rstrip("0")
    if not digits:
        return neg + "0"
    exp += len(dig) - len(digits)
    decpt = exp + len(digits)  # value = 0.DIGITS * 10**decpt
    if decpt < -3 or decpt > 17:
        e = decpt - 1
        return "%s%s.%sE%s%d" % (neg, digits[0], digits[1:] or "0", "-" if e < 0 else "+", abs(e))
    if decpt <= 0:
        return "%s0.%s%s" % (neg, "0" * -decpt, digits)
    if len(digits) > decpt:
        return "%s%s.%s" % (neg, digits[:decpt], digits[decpt:])
    return neg + digits + "0" * (decpt - len(digits))


# 309 digits in a row: the JSON may hold an integer beyond a float's range
# (10**309 and up), which PHP could only get as INF, another value, so the
# gateway refuses the write.
_FLOAT_RANGE_DIGITS = re.compile(rb"[0-9]{309}")


def _beyond_float(v):
    if isinstance(v, int) and not isinstance(v, bool):
        try:
            float(v)
        except OverflowError:
            return True
    return False


def check_php_limits(obj, data):
    """Raises ValueError when PHP could not be given the session ``obj``
    (``data`` being its JSON): the gateway would store it and then answer
    every PHP request of the session with a 500, or refuse it."""
    # Cheap bounds first: no more containers than brackets, no more values
    # than bytes, no run of digits that long, PHP's text at most
    # _PHP_TEXT_PER_JSON_BYTE times the JSON. Only a session past them is
    # walked.
    if len(data) * _PHP_TEXT_PER_JSON_BYTE > PHP_MAX_TEXT:
        size = php_text_size(obj)
        if size > PHP_MAX_TEXT:
            raise ValueError(
                "session data too large for PHP: its PHP text would be %d bytes, more than the %d the gateway gives PHP"
                % (size, PHP_MAX_TEXT)
            )
    long_digits = _FLOAT_RANGE_DIGITS.search(data) is not None
    if not long_digits and data.count(b"[") + data.count(b"{") <= PHP_MAX_DEPTH and len(data) <= PHP_MAX_VALUES:
        return
    values = 1
    stack = [(obj, 1)]
    while stack:
        c, depth = stack.pop()
        if depth > PHP_MAX_DEPTH and not _scalar_tag(c):
            raise ValueError(
                "session data nested more than %d deep: PHP could not read the session" % PHP_MAX_DEPTH
            )
        values += len(c)
        for v in c.values() if isinstance(c, dict) else c:
            if isinstance(v, (dict, list, tuple)):
                stack.append((v, depth + 1))
            elif long_digits and _beyond_float(v):
                raise ValueError(
                    "session data holds an integer beyond a float's range (%d digits): "
                    "PHP could not be given the session" % len(str(abs(v)))
                )
    if values > PHP_MAX_VALUES:
        raise ValueError(
            "session data holds %d values, more than the %d PHP can be given" % (values, PHP_MAX_VALUES)
        )


def _member_name(key):
    # The name json.dumps gives a dict key that is not a str.
    return next(iter(loads(dumps({key: None}))))


def check_member_names(obj):
    """Raises ValueError when a dict in the session ``obj`` has two keys
    that JSON writes as the same member name ({1: "a", "1": "b"}): Python
    reads such JSON back (the last one wins), but the gateway refuses it
    when it gives PHP the session, so every PHP request of the session
    would get a 500. Only dicts with a key that is not a str can collide."""
    stack = [obj]
    while stack:
        c = stack.pop()
        if isinstance(c, dict):
            if not all(isinstance(k, str) for k in c):
                names = {}
                for k in c:
                    name = k if isinstance(k, str) else _member_name(k)
                    if name in names:
                        raise ValueError(
                            "session data has keys %r and %r, which are the same JSON member name: "
                            "PHP could not read the session" % (names[name], k)
                        )
                    names[name] = k
            values = c.values()
        else:
            values = c
        stack.extend(v for v in values if isinstance(v, (dict, list, tuple)))


class LinkedSessionError(ValueError):
    """A change that puts keys next to "__php_session__", a linked PHP
    session kept whole: PHP's data, not the view's, cannot take it, so the
    whole change is refused and the session stays as it was (a login
    included: the gateway would refuse it, docs/protocol.md)."""


def check_reserved_shapes(obj, data):
    """Raises ValueError when the session ``obj`` (``data`` being its JSON)
    uses the member names docs/protocol.md reserves for PHP's tags in a way
    the gateway refuses, or reads as something else: "__php_session__" next
    to other keys, a one-member "__php__" object not holding a string, or a
    session whose only key is "__php__", whose text PHP would take for its
    whole session. Only a session with such a name in its JSON is walked."""
    if b'"__php' not in data:
        return
    if len(obj) == 1:
        (k, v), = obj.items()
        if k in _TAG_KEYS:
            raise ValueError(
                "a session whose only key is %s is read by PHP as a tag holding its whole session: "
                "add another key or use another name" % json.dumps(k)
            )
    for k in _SESSION_TAG_KEYS:
        if k in obj and len(obj) > 1:
            raise LinkedSessionError(
                "%s must be the only key of the session (it holds a whole linked PHP session): "
                "PHP could not read the session" % json.dumps(k)
            )
    stack = [(obj, True)]
    while stack:
        c, top = stack.pop()
        if isinstance(c, dict):
            if len(c) == 1:
                (k, v), = c.items()
                if (k in _TAG_KEYS or top and k in _SESSION_TAG_KEYS) and not isinstance(v, str):
                    raise ValueError(
                        "%s must hold a string (PHP serialize text) when it is alone in its object, "
                        "not %s: PHP could not read the session" % (json.dumps(k), type(v).__name__)
                    )
            values = c.values()
        else:
            values = c
        stack.extend((v, False) for v in values if isinstance(v, (dict, list, tuple)))


def request_meta(key, session_id, data, nonce, timestamp, features=FEATURES, max_age=None):
    """The WSGI environ entries the gateway sends with a request: what
    verify_request checks. Only the gateway sends them in production; the
    test client (sessiongate_django.test) and the tests play its part."""
    chunks = encode_chunks(data)
    meta = {
        META_SESSION_ID: session_id,
        META_NONCE: nonce,
        META_TIMESTAMP: timestamp,
        META_SIGNATURE: request_signature(key, nonce, timestamp, session_id, data),
        META_DATA_COUNT: str(len(chunks)),
    }
    if features:
        meta[META_FEATURES] = features
    if max_age is not None:
        meta[META_MAX_AGE] = str(max_age)
        meta[META_MAX_AGE_SIGNATURE] = max_age_signature(key, nonce, str(max_age))
    for i, chunk in enumerate(chunks):
        meta[META_DATA + str(i)] = chunk
    return meta


def verify_request(meta, keys, now):
    """Checks the gateway's headers in a WSGI environ (or request.META)
    against ``keys`` (derived, first = current) and the clock ``now`` (unix
    seconds). Returns a Verified or raises ProtocolError."""
    sig = meta.get(META_SIGNATURE)
    if sig is None:
        raise ProtocolError("no gateway signature", missing=True)
    nonce = meta.get(META_NONCE, "")
    ts = meta.get(META_TIMESTAMP, "")
    sid = meta.get(META_SESSION_ID, "")
    if not _HEX32.match(nonce):
        raise ProtocolError("bad nonce")
    if not _DIGITS.match(ts):
        raise ProtocolError("bad timestamp")
    if sid and not _HEX64.match(sid):
        raise ProtocolError("bad session id")
    data = decode_chunks(meta.get, META_DATA, META_DATA_COUNT)
    # compare_digest raises TypeError on non-ASCII str (header bytes are
    # latin-1 in WSGI): refuse anything that is not a hex digest first.
    if not _HEX64.match(sig):
        raise ProtocolError("bad signature (not 64 hex characters)")
    matched = None
    for key in keys:
        if hmac.compare_digest(request_signature(key, nonce, ts, sid, data), sig):
            matched = key
            break
    if matched is None:
        raise ProtocolError(
            "bad signature (forged, or SESSIONGATE_SESSION_KEYS differs from the gateway's)", kind=REFUSED_SIGNATURE
        )
    if now - int(ts) > MAX_SKEW:
        # Older than the window: a request that waited in the server's
        # queue (the gateway said how long it may), or a clock behind ours.
        max_age = _max_age(meta, matched, nonce)
        if now - int(ts) > max_age:
            raise ProtocolError(
                "timestamp %s is more than %d s before this clock (waited in the server's queue that long, "
                "or the clocks differ)" % (ts, max_age),
                kind=REFUSED_CLOCK,
            )
    elif int(ts) - now > MAX_SKEW:
        raise ProtocolError("timestamp %s is more than %d s after this clock" % (ts, MAX_SKEW), kind=REFUSED_CLOCK)
    try:
        obj = loads(data)
    except ValueError as e:
        raise ProtocolError("session data: %s" % e) from None
    features = frozenset(meta.get(META_FEATURES, "").split())
    return Verified(sid, obj, matched, nonce, features)


def change_headers(verified, op, rotate=False, expiry="", data=b""):
    """The signed response headers for a change: ``op`` is write, delete or
    touch; ``rotate`` False, True (a new ID for new data: flush() then a
    write) or "carry" (a new ID for the data the view was given:
    cycle_key()); ``data`` the JSON bytes for write; ``expiry`` "" (none),
    "browser", "default", whole seconds as a string, or "at:" and unix
    seconds."""
    if op not in ("write", "delete", "touch"):
        raise ValueError("unknown op %r" % op)
    if rotate == "carry":
        rot = "carry"
    else:
        rot = "1" if rotate else ""
    signed = data if op == "write" else b""
    headers = [("X-Sessiongate-Op", op)]
    if rot:
        headers.append(("X-Sessiongate-Rotate", rot))
    if expiry:
        headers.append(("X-Sessiongate-Expiry", expiry))
    if op == "write":
        chunks = encode_chunks(data)
        headers.append(("X-Sessiongate-Data-Count", str(len(chunks))))
        for i, c in enumerate(chunks):
            headers.append(("X-Sessiongate-Data-%d" % i, c))
        size = header_bytes(headers)
        if size > MAX_CHANGE_HEADER_BYTES:
            raise ValueError(
                "session data too large for the gateway: %d bytes of JSON take %d bytes "
                "of response headers, at most %d" % (len(data), size, MAX_CHANGE_HEADER_BYTES)
            )
    headers.append(
        (
            "X-Sessiongate-Signature",
            response_signature(verified.key, verified.nonce, op, rot, expiry, signed),
        )
    )
    return headers
