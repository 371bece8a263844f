package wsgi

// docs/protocol.md section 5 as a contract that apps other than
// sessiongate_django implement (a Flask or .NET middleware): what such an
// app may send within the document's words, and what the gateway does with
// what it cannot take.

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/sessionbridge"
)

// sendChange answers a request with a write of data cut into pieces of
// piece base64 characters (DataChunk when 0), signed as section 5 says;
// sig, when given, edits the signature first.
func sendChange(w http.ResponseWriter, r *http.Request, op, rotate, expiry string, data []byte, piece int, sig func(string) string) {
	h := w.Header()
	h.Set(hdrOp, op)
	if rotate != "" {
		h.Set(hdrRotate, rotate)
	}
	if expiry != "" {
		h.Set(hdrExpiry, expiry)
	}
	var signed []byte
	if op == "write" {
		signed = data
		if piece == 0 {
			piece = DataChunk
		}
		enc := base64.StdEncoding.EncodeToString(data)
		n := 0
		for ; len(enc) > 0; n++ {
			c := min(piece, len(enc))
			h.Set(hdrData+strconv.Itoa(n), enc[:c])
			enc = enc[c:]
		}
		h.Set(hdrDataCount, strconv.Itoa(n))
	}
	s := ResponseSignature(HeaderKey([]byte(testSecret)), r.Header.Get(hdrNonce), op, rotate, expiry, signed)
	if sig != nil {
		s = sig(s)
	}
	h.Set(hdrSignature, s)
	h.Set(sessionbridge.DjangoMarkHeader, sessionbridge.DjangoMarkOK)
	io.WriteString(w, "saved")
}

// TestChangeExpiryPastTheLimitIsCapped: "remember me for 20 years" is
// kept as long as the gateway keeps any session (an expiry over ten years
// counts as ten, the gateway's limits cap it further), not refused with the
// login it came with while the client got the app's 200.
func TestChangeExpiryPastTheLimitIsCapped(t *testing.T) {
	key := HeaderKey([]byte(testSecret))
	const nonce = "0123456789abcdef0123456789abcdef"
	read := func(expiry string) (*change, error) {
		h := http.Header{}
		h.Set(hdrOp, "touch")
		h.Set(hdrExpiry, expiry)
		h.Set(hdrSignature, ResponseSignature(key, nonce, "touch", "", expiry, nil))
		return readChange(h, key, nonce)
	}
	for expiry, want := range map[string]time.Duration{
		"600":                     600 * time.Second,
		"630720000":               maxExpiry, // 20 years
		"99999999999999999999999": maxExpiry, // past int64
	} {
		if c, err := read(expiry); err != nil || c.expiry != want {
			t.Errorf("expiry %s: %+v %v, want %v", expiry, c, err, want)
		}
	}
	if c, err := read("at:99999999999999999999999"); err != nil || !c.until.Equal(time.Unix(maxExpiryAt, 0)) {
		t.Errorf("at: past 2^40: %+v %v", c, err)
	}
	for _, bad := range []string{"0", "-5", "+5", "0600", "5s", "at:-1", "at:01", "at:"} {
		if c, err := read(bad); !errors.Is(err, sessionbridge.ErrUnstorable) {
			t.Errorf("expiry %q: %+v %v, want the signed change refused", bad, c, err)
		}
	}

	e := newEnv(t, envOpts{})
	e.app.handle = func(w http.ResponseWriter, r *http.Request, _ seen) (answer, bool) {
		sendChange(w, r, "write", "", "630720000", []byte(`{"_user":"alice"}`), 0, nil)
		return answer{}, false
	}
	res, _, ck := e.do("POST", "/a/login", "", strings.NewReader("u=alice"))
	if res.StatusCode != 200 || ck == "" || ck == "-" {
		t.Fatalf("login remembered for 20 years: %d cookie %q", res.StatusCode, ck)
	}
	if _, data := e.open(ck); data != `{"_user":"alice"}` {
		t.Fatalf("session holds %s", data)
	}
}

// TestSignedChangeTheGatewayCannotApplyIs500: a change whose signature
// verifies is the app's, so one the gateway cannot apply gets 500, as
// refused data does, rather than the app's answer as if it were saved;
// one that does not verify was never the app's and is ignored (logged).
// Section 5's limit of 4096 pieces holds to the piece.
func TestSignedChangeTheGatewayCannotApplyIs500(t *testing.T) {
	// data4097 is base64 of exactly 4097 pieces of 4 characters.
	data4097 := []byte(`{"pad":"` + strings.Repeat("x", 4097*3-len(`{"pad":""}`)) + `"}`)
	data4096 := data4097[:len(data4097)-3]
	data4096[len(data4096)-2], data4096[len(data4096)-1] = '"', '}'
	for _, tc := range []struct {
		name               string
		op, rotate, expiry string
		data               []byte
		piece              int
		sig                func(string) string
		status             int
		stored             string
	}{
		{name: "unknown rotate", op: "write", rotate: "2", data: []byte(`{"a":2}`), status: 500},
		{name: "unknown op", op: "merge", status: 500},
		{name: "malformed expiry", op: "write", expiry: "soon", data: []byte(`{"a":2}`), status: 500},
		{name: "4097 pieces", op: "write", data: data4097, piece: 4, status: 500},
		{name: "4096 pieces", op: "write", data: data4096, piece: 4, status: 200, stored: string(data4096)},
		{name: "unsigned", op: "write", data: []byte(`{"a":2}`), sig: func(string) string { return "" }, status: 200},
		{name: "forged", op: "write", data: []byte(`{"a":2}`), sig: func(s string) string { return strings.Repeat("0", len(s)) }, status: 200},
		{name: "not hex", op: "write", data: []byte(`{"a":2}`), sig: func(s string) string { return "zz" + s[2:] }, status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			e.respond(answer{op: "write", data: `{"a":1}`})
			_, _, ck := e.do("GET", "/a/", "", nil)
			e.app.handle = func(w http.ResponseWriter, r *http.Request, _ seen) (answer, bool) {
				sendChange(w, r, tc.op, tc.rotate, tc.expiry, tc.data, tc.piece, tc.sig)
				return answer{}, false
			}
			res, body, set := e.do("POST", "/a/", ck, strings.NewReader("x"))
			if res.StatusCode != tc.status || tc.status == 200 && body != "saved" {
				t.Fatalf("status %d body %q, want %d", res.StatusCode, body, tc.status)
			}
			if set != "" {
				t.Errorf("cookie %q set", set)
			}
			want := tc.stored
			if want == "" {
				want = `{"a":1}`
			}
			if _, data := e.open(ck); data != want {
				t.Errorf("session holds %.80s, want %.80s", data, want)
			}
			if logged := strings.Contains(e.logs.String(), "session change from Django ignored"); logged != (tc.status == 200 && tc.stored == "") {
				t.Errorf("logged as ignored: %v; log:\n%s", logged, e.logs.String())
			}
		})
	}
}

// TestTouchWithRotateMovesTheSession: X-Sessiongate-Rotate with touch (a
// new ID for an unchanged session: a privilege change, a fixation
// defence) moves the session to a new ID as it is; the old ID no longer
// opens it. With delete, the delete wins: the session ends, no new one.
func TestTouchWithRotateMovesTheSession(t *testing.T) {
	for _, rotate := range []string{"1", "carry"} {
		t.Run(rotate, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			e.respond(answer{op: "write", data: `{"u":"x"}`})
			_, _, ck := e.do("GET", "/a/", "", nil)
			oldID, _ := e.open(ck)

			e.respond(answer{op: "touch", rotate: rotate})
			res, _, newCk := e.do("GET", "/a/", ck, nil)
			if res.StatusCode != 200 || newCk == "" || newCk == "-" || newCk == ck {
				t.Fatalf("touch with rotate %s: %d cookie %q", rotate, res.StatusCode, newCk)
			}
			if id, data := e.open(newCk); id == oldID || data != `{"u":"x"}` {
				t.Fatalf("new cookie opens %q %s", id, data)
			}
			if id, data := e.open(ck); id != "" || data != "{}" {
				t.Fatalf("old ID still opens the session: %q %s", id, data)
			}

			e.respond(answer{op: "delete", rotate: rotate})
			res, _, set := e.do("GET", "/a/", newCk, nil)
			if res.StatusCode != 200 || set != "-" {
				t.Fatalf("delete with rotate %s: %d cookie %q", rotate, res.StatusCode, set)
			}
			if id, _ := e.open(newCk); id != "" {
				t.Fatalf("deleted session still opens as %q", id)
			}
		})
	}
}

// TestSignatureHexInEitherCase: section 5 writes a signature as hex of
// the HMAC; .NET's Convert.ToHexString and Java's upper-case HexFormat
// write upper case, which the gateway takes for a change and for a logins
// report alike.
func TestSignatureHexInEitherCase(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.app.handle = func(w http.ResponseWriter, r *http.Request, _ seen) (answer, bool) {
		sendChange(w, r, "write", "", "", []byte(`{"u":"x"}`), 0, strings.ToUpper)
		return answer{}, false
	}
	res, _, ck := e.do("GET", "/a/", "", nil)
	if res.StatusCode != 200 || ck == "" {
		t.Fatalf("upper-case signature: %d cookie %q; log:\n%s", res.StatusCode, ck, e.logs.String())
	}
	if _, data := e.open(ck); data != `{"u":"x"}` {
		t.Fatalf("session holds %s", data)
	}

	key := HeaderKey([]byte(testSecret))
	const nonce = "0123456789abcdef0123456789abcdef"
	value := base64.StdEncoding.EncodeToString([]byte("7")) + ":h1"
	h := http.Header{}
	h.Set(hdrLogins, value)
	h.Set(hdrLoginsSig, strings.ToUpper(LoginsSignature(key, nonce, value)))
	if got, err := readLogins(h, key, nonce); err != nil || len(got) != 1 || got[0].user != "7" {
		t.Fatalf("upper-case logins signature: %+v %v", got, err)
	}
}

// TestChangeResponseHeadLimit: section 5's limit on the app's response
// head. A change of 9 MiB of headers (the most sessiongate_django sends)
// is taken; past 10 MiB the client gets 502 and the change is lost, the
// session as it was.
func TestChangeResponseHeadLimit(t *testing.T) {
	// Signing and encoding 10 MiB of headers takes the fake app seconds
	// under -race on a busy machine: the env's 2 s timeout answered 504.
	// Reading and checking 9 MiB of them took the gateway over the
	// client's 10 s there (the unit step, six packages at a time).
	e := newEnv(t, envOpts{opts: func(o *Options) { o.ReadTimeout = time.Minute }, clientTimeout: 2 * time.Minute})
	// base64 takes 4/3; the piece names and line ends ~0.3% more.
	blob := func(headerBytes int) []byte {
		return []byte(`{"blob":"` + strings.Repeat("x", headerBytes/4*3*997/1000) + `"}`)
	}
	data := []byte(`{"a":1}`)
	e.app.handle = func(w http.ResponseWriter, r *http.Request, _ seen) (answer, bool) {
		sendChange(w, r, "write", "", "", data, 0, nil)
		return answer{}, false
	}
	_, _, ck := e.do("POST", "/a/", "", strings.NewReader("x"))
	data = blob(maxResponseHeaderBytes + 64<<10)
	res, _, set := e.do("POST", "/a/upload", ck, strings.NewReader("x"))
	if res.StatusCode != http.StatusBadGateway || set != "" {
		t.Fatalf("over 10 MiB of change headers: %d cookie %q, want 502", res.StatusCode, set)
	}
	if _, stored := e.open(ck); stored != `{"a":1}` {
		t.Fatalf("session holds %.80s after the lost change, want the one before", stored)
	}
	data = blob(9 << 20)
	res, _, ck = e.do("POST", "/a/upload", "", strings.NewReader("x"))
	if res.StatusCode != 200 || ck == "" {
		t.Fatalf("9 MiB of change headers: %d cookie %q; log:\n%.2000s", res.StatusCode, ck, e.logs.String())
	}
	if _, stored := e.open(ck); stored != string(data) {
		t.Fatalf("session of %d bytes, want %d", len(stored), len(data))
	}
}
