package wsgi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge"
	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// The header names of docs/protocol.md section 5, in Go's canonical form.
const (
	hdrSessionID = "X-Sessiongate-Session-Id"
	hdrDataCount = "X-Sessiongate-Data-Count"
	hdrData      = "X-Sessiongate-Data-" // + 0..N-1
	hdrNonce     = "X-Sessiongate-Nonce"
	hdrTimestamp = "X-Sessiongate-Timestamp"
	hdrSignature = "X-Sessiongate-Signature"
	hdrOp        = "X-Sessiongate-Op"
	hdrRotate    = "X-Sessiongate-Rotate"
	hdrExpiry    = "X-Sessiongate-Expiry"
	hdrFeatures  = "X-Sessiongate-Features"
	hdrLogins    = "X-Sessiongate-Logins"
	hdrLoginsSig = "X-Sessiongate-Logins-Signature"
	hdrMaxAge    = "X-Sessiongate-Max-Age"
	hdrMaxAgeSig = "X-Sessiongate-Max-Age-Signature"
)

// middlewareSkew is how far from its clock sessiongate_django takes a
// request's timestamp (protocol.py MAX_SKEW) without X-Sessiongate-Max-Age.
const middlewareSkew = 60 * time.Second

// features is X-Sessiongate-Features: the answers this gateway understands
// beyond the first version of the protocol, so that a newer middleware
// sends them only to a gateway that takes them (an older one refuses a
// change it cannot read, whole). rotate-carry: X-Sessiongate-Rotate: carry;
// expiry-at: X-Sessiongate-Expiry: at:<unix seconds>; logins:
// X-Sessiongate-Logins.
const features = "rotate-carry expiry-at logins"

// DataChunk is the longest X-Sessiongate-Data-n value the gateway sends:
// gunicorn refuses header lines over 8190 bytes by default.
const DataChunk = 8000

// maxDataChunks bounds what the gateway accepts back from the app
// (docs/protocol.md section 5): a change in more pieces is refused, 500.
// The transport's maxResponseHeaderBytes bounds the total anyway.
const maxDataChunks = 4096

// headerKeyPurpose is the DeriveKey purpose of the header signing key.
const headerKeyPurpose = "django-headers"

// HeaderKey is K of protocol.md section 5 for one configured secret.
func HeaderKey(secret []byte) []byte {
	return sessionbridge.DeriveKey(secret, headerKeyPurpose)
}

func dataHash(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func mac(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(m.Sum(nil))
}

// sameMAC reports whether sig, the hex an app sent, is the MAC want (as
// mac writes it), hex in either case: the gateway writes lower case, but
// .NET's Convert.ToHexString and Java's upper-case HexFormat write upper
// case, and the protocol names no case. want is lower-case hex, so sig in
// lower case is compared with it as it is, not decoded (nor want again).
func sameMAC(sig, want string) bool {
	return hmac.Equal([]byte(strings.ToLower(sig)), []byte(want))
}

// RequestSignature signs what the gateway tells the app about the session.
func RequestSignature(key []byte, nonce, timestamp, id string, data []byte) string {
	return mac(key, "sg1-req", nonce, timestamp, id, dataHash(data))
}

// ResponseSignature signs the change the app hands back; data is nil for
// delete and touch.
func ResponseSignature(key []byte, nonce, op, rotate, expiry string, data []byte) string {
	return mac(key, "sg1-resp", nonce, op, rotate, expiry, dataHash(data))
}

// LoginsSignature signs the app's report of the login hashes valid for
// its users (X-Sessiongate-Logins), bound to the request's nonce as a
// change is: a cached response cannot report again what it reported once.
func LoginsSignature(key []byte, nonce, value string) string {
	return mac(key, "sg1-logins", nonce, value)
}

// MaxAgeSignature signs X-Sessiongate-Max-Age, bound to the attempt's
// nonce (which the request signature covers) under a label of its own, so
// that the request signature's string stays what older middlewares check.
func MaxAgeSignature(key []byte, nonce, value string) string {
	return mac(key, "sg1-age", nonce, value)
}

// maxAgeValue is X-Sessiongate-Max-Age for a gateway that waits up to
// readTimeout for Django's answer, or "" when the middleware's own window
// covers it. A request can wait that long in gunicorn's queue, behind busy
// workers, before the middleware checks its timestamp: without the header
// it would run with an anonymous session past the 60 s. One second more
// for the timestamp's truncation to whole seconds.
func maxAgeValue(readTimeout time.Duration) string {
	if readTimeout <= middlewareSkew {
		return ""
	}
	secs := int64((readTimeout + time.Second - 1) / time.Second)
	return strconv.FormatInt(secs+1, 10)
}

// setSessionHeaders adds the signed session headers of one request, with
// X-Sessiongate-Max-Age when maxAge (maxAgeValue) is set.
func setSessionHeaders(h http.Header, key []byte, nonce string, now time.Time, id string, data []byte, maxAge string) {
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(hdrSessionID, id)
	setData(h, data)
	h.Set(hdrNonce, nonce)
	h.Set(hdrTimestamp, ts)
	h.Set(hdrSignature, RequestSignature(key, nonce, ts, id, data))
	h.Set(hdrFeatures, features)
	if maxAge != "" {
		h.Set(hdrMaxAge, maxAge)
		h.Set(hdrMaxAgeSig, MaxAgeSignature(key, nonce, maxAge))
	}
}

// signedAge is how long ago, by now, the attempt whose request headers
// are h was signed (X-Sessiongate-Timestamp), or 0 without one: the time
// it waited before Django answered, to tell a request that sat in the
// backend's queue from a clock that is off when the middleware refuses
// the timestamp.
func signedAge(h http.Header, now time.Time) time.Duration {
	ts, err := strconv.ParseInt(h.Get(hdrTimestamp), 10, 64)
	if err != nil {
		return 0
	}
	return now.Sub(time.Unix(ts, 0))
}

// setData writes data as base64 cut in DataChunk pieces.
func setData(h http.Header, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	n := 0
	for {
		c := min(DataChunk, len(enc))
		h.Set(hdrData+strconv.Itoa(n), enc[:c])
		enc = enc[c:]
		n++
		if len(enc) == 0 {
			break
		}
	}
	h.Set(hdrDataCount, strconv.Itoa(n))
}

// single returns the only value of header name; several values are an
// error (a response must not be able to smuggle a second opinion).
func single(h http.Header, name string) (string, error) {
	v := h.Values(name)
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", fmt.Errorf("%s given %d times", name, len(v))
}

// readData joins and decodes the X-Sessiongate-Data-* headers; pieces
// gives their number, which the caller bounds (maxDataChunks) once the
// signature over the data verified. A count past the pieces given stops at
// the first one missing.
func readData(h http.Header) (data []byte, pieces int, err error) {
	cs, err := single(h, hdrDataCount)
	if err != nil {
		return nil, 0, err
	}
	n, err := strconv.Atoi(cs)
	if err != nil || n < 1 {
		return nil, 0, fmt.Errorf("bad %s %q", hdrDataCount, cs)
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		name := hdrData + strconv.Itoa(i)
		v, err := single(h, name)
		if err != nil {
			return nil, 0, err
		}
		if v == "" {
			return nil, 0, fmt.Errorf("%s missing", name)
		}
		b.WriteString(v)
	}
	data, err = base64.StdEncoding.DecodeString(b.String())
	if err != nil {
		return nil, 0, fmt.Errorf("session data: %w", err)
	}
	return data, n, nil
}

// change is a verified session change handed back by the app.
type change struct {
	op     string // write, delete, touch
	rotate bool
	// carry: the rotation moves the data the app was given (Django's
	// cycle_key(), X-Sessiongate-Rotate: carry), not data made anew after
	// a flush() (1): what others stored meanwhile moves along.
	carry bool
	// expiry is the app's expiry: browser, or seconds > 0; zero = none.
	browser bool
	expiry  time.Duration
	// reset: the app dropped its own expiry (set_expiry(None)), back to
	// the gateway's policy.
	reset bool
	// until: the app's fixed end of the session (set_expiry() with a
	// datetime); zero = none.
	until time.Time
	data  []byte // for write
}

// errNoChange: the response carries no session change.
var errNoChange = errors.New("no session change")

// maxExpiry caps X-Sessiongate-Expiry (a larger one counts as this); the
// manager caps it further. maxExpiryAt caps an at: expiry the same way.
const (
	maxExpiry   = 10 * 365 * 24 * time.Hour
	maxExpiryAt = 1 << 40 // unix seconds, some 34,000 years on
)

// readChange parses and verifies the change headers of a response against
// key and the request's nonce. It returns errNoChange when there are none.
// A change that does not verify (no signature, a wrong one, data that
// cannot be read to check it) is an error to log and ignore: the app did
// not send it. One that verifies but cannot be applied (an unknown op or
// Rotate value, a malformed expiry, too many pieces) is the app's change
// all the same, refused: the error wraps sessionbridge.ErrUnstorable, and
// the client gets 500 rather than the app's answer as if it were saved.
func readChange(h http.Header, key []byte, nonce string) (*change, error) {
	op, err := single(h, hdrOp)
	if err != nil {
		return nil, err
	}
	if op == "" {
		if sig, _ := single(h, hdrSignature); sig != "" || h.Get(hdrDataCount) != "" {
			return nil, errors.New("change headers without " + hdrOp)
		}
		return nil, errNoChange
	}
	rotate, err := single(h, hdrRotate)
	if err != nil {
		return nil, err
	}
	expiry, err := single(h, hdrExpiry)
	if err != nil {
		return nil, err
	}
	sig, err := single(h, hdrSignature)
	if err != nil {
		return nil, err
	}
	if sig == "" {
		return nil, errors.New("change without a signature")
	}
	var data []byte
	pieces := 0
	if op == "write" {
		if data, pieces, err = readData(h); err != nil {
			return nil, err
		}
	}
	if !sameMAC(sig, ResponseSignature(key, nonce, op, rotate, expiry, data)) {
		return nil, errors.New("bad signature")
	}
	c, err := parseChange(op, rotate, expiry, data, pieces)
	if err != nil {
		return nil, fmt.Errorf("%w: the change's signature verified: %w", sessionbridge.ErrUnstorable, err)
	}
	return c, nil
}

// parseChange reads a change whose signature verified.
func parseChange(op, rotate, expiry string, data []byte, pieces int) (*change, error) {
	c := &change{op: op, rotate: rotate == "1" || rotate == "carry", carry: rotate == "carry"}
	if rotate != "" && !c.rotate {
		return nil, fmt.Errorf("bad %s %q", hdrRotate, rotate)
	}
	switch op {
	case "write":
		if pieces > maxDataChunks {
			return nil, fmt.Errorf("session data in %d pieces of %s, at most %d", pieces, hdrData+"*", maxDataChunks)
		}
		c.data = data
	case "delete", "touch":
	default:
		return nil, fmt.Errorf("unknown %s %q", hdrOp, op)
	}
	switch expiry {
	case "":
	case "browser":
		c.browser = true
	case "default":
		c.reset = true
	default:
		if at, ok := strings.CutPrefix(expiry, "at:"); ok {
			n, ok := cappedSeconds(at, maxExpiryAt)
			if !ok {
				return nil, fmt.Errorf("bad %s %q", hdrExpiry, expiry)
			}
			c.until = time.Unix(n, 0)
			break
		}
		n, ok := cappedSeconds(expiry, int64(maxExpiry/time.Second))
		if !ok || n < 1 {
			return nil, fmt.Errorf("bad %s %q", hdrExpiry, expiry)
		}
		c.expiry = time.Duration(n) * time.Second
	}
	return c, nil
}

// cappedSeconds reads s, a count of seconds in plain decimal (no sign, no
// leading zero), as at most limit: "remember me for 20 years" is the
// longest the gateway keeps a session, not an error that loses the login.
func cappedSeconds(s string, limit int64) (int64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' || strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil { // only a number past int64 is left
		return limit, true
	}
	return min(n, limit), true
}

// userLogins is one user's entry of X-Sessiongate-Logins: the login hashes
// (_auth_user_hash) Django takes for that user now.
type userLogins struct {
	user   string
	hashes []string
}

// Bounds of X-Sessiongate-Logins: a request saves a user or two (a login,
// a password change); an admin's bulk action more, which are reported up
// to these.
const (
	maxLoginUsers  = 32
	maxLoginHashes = 8 // the current secret and its fallbacks
	maxLoginHash   = 256
)

// readLogins parses and verifies X-Sessiongate-Logins against key and the
// request's nonce: space-separated entries of base64(user id) ":" and the
// comma-separated hashes, none for a user deleted. It returns errNoChange
// when there is none.
func readLogins(h http.Header, key []byte, nonce string) ([]userLogins, error) {
	value, err := single(h, hdrLogins)
	if err != nil {
		return nil, err
	}
	sig, err := single(h, hdrLoginsSig)
	if err != nil {
		return nil, err
	}
	if value == "" {
		if sig != "" {
			return nil, errors.New(hdrLoginsSig + " without " + hdrLogins)
		}
		return nil, errNoChange
	}
	if !sameMAC(sig, LoginsSignature(key, nonce, value)) {
		return nil, errors.New("bad " + hdrLoginsSig)
	}
	entries := strings.Fields(value)
	if len(entries) > maxLoginUsers {
		return nil, fmt.Errorf("%s names %d users, at most %d", hdrLogins, len(entries), maxLoginUsers)
	}
	out := make([]userLogins, 0, len(entries))
	for _, e := range entries {
		u64, hs, ok := strings.Cut(e, ":")
		user, err := base64.StdEncoding.DecodeString(u64)
		if !ok || err != nil || !store.ValidLoginUser(string(user)) {
			return nil, fmt.Errorf("bad user in %s entry %q", hdrLogins, e)
		}
		var hashes []string // none: the user was deleted, no login is valid
		if hs != "" {
			hashes = strings.Split(hs, ",")
		}
		if len(hashes) > maxLoginHashes {
			return nil, fmt.Errorf("%s gives user %q %d hashes, at most %d", hdrLogins, user, len(hashes), maxLoginHashes)
		}
		for _, h := range hashes {
			if h == "" || len(h) > maxLoginHash || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r > '~' }) {
				return nil, fmt.Errorf("bad hash in %s entry %q", hdrLogins, e)
			}
		}
		out = append(out, userLogins{user: string(user), hashes: hashes})
	}
	return out, nil
}
