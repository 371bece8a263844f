package wsgi

// docs/protocol.md section 5 as a contract that apps other than
// sessiongate_django implement (a Flask or .NET middleware): what such an
// app may send within the document's words, and what the gateway does with
// what it cannot take.

import (
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

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
