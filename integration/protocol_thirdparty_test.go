package integration

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// docProtocolApp is a WSGI application that speaks docs/protocol.md
// section 5 as a third party writes it from the document alone (no
// sessiongate_django): its own HMAC and base64, signatures in upper-case
// hex as .NET's Convert.ToHexString writes them.
const docProtocolApp = `
import base64, hashlib, hmac, os

K = hmac.new(os.environ["SG_SECRET"].encode(), b"sessiongate:django-headers", hashlib.sha256).digest()

def mac(*parts):
    return hmac.new(K, "\n".join(parts).encode(), hashlib.sha256).hexdigest().upper()

def application(environ, start_response):
    h = lambda name: environ.get("HTTP_X_SESSIONGATE_" + name, "")
    data = base64.b64decode("".join(h("DATA_%d" % i) for i in range(int(h("DATA_COUNT") or 0))))
    nonce = h("NONCE")
    ok = hmac.compare_digest(h("SIGNATURE").upper(), mac("sg1-req", nonce, h("TIMESTAMP"), h("SESSION_ID"), hashlib.sha256(data).hexdigest()))
    headers = [("Content-Type", "text/plain"), ("X-Sessiongate-Django", "ok" if ok else "refused-signature")]

    def change(op, rotate="", expiry="", new=b""):
        headers.append(("X-Sessiongate-Op", op))
        if rotate:
            headers.append(("X-Sessiongate-Rotate", rotate))
        if expiry:
            headers.append(("X-Sessiongate-Expiry", expiry))
        if op == "write":
            enc = base64.b64encode(new).decode()
            pieces = [enc[i:i + 8000] for i in range(0, len(enc), 8000)]
            headers.append(("X-Sessiongate-Data-Count", str(len(pieces))))
            headers.extend(("X-Sessiongate-Data-%d" % i, p) for i, p in enumerate(pieces))
        signed = new if op == "write" else b""
        headers.append(("X-Sessiongate-Signature", mac("sg1-resp", nonce, op, rotate, expiry, hashlib.sha256(signed).hexdigest())))

    path = environ["PATH_INFO"]
    body = data
    if not ok:
        body = b"unverified"
    elif path == "/dj/login/":
        # "Remember me" for 20 years.
        change("write", expiry=str(20 * 365 * 24 * 3600), new=b'{"_user":"alice"}')
    elif path == "/dj/promote/":
        # A new ID for the unchanged session: a privilege change.
        change("touch", rotate="1")
    elif path == "/dj/broken/":
        # Signed, but no Rotate value the contract knows.
        change("write", rotate="2", new=b'{"_user":"mallory"}')
    start_response("200 OK", headers)
    return [body]
`

// TestThirdPartyAppOfTheProtocolDoc: an app that follows docs/protocol.md
// section 5 to the letter, under gunicorn, with the sessions in Redis. Its
// upper-case hex signatures are taken; a 20-year expiry is kept as long as
// the gateway keeps a session, with the login it came with; a touch with
// X-Sessiongate-Rotate moves the session to a new ID, the old one opening
// nothing; and a signed change the gateway cannot apply gets 500, the
// session unchanged. Each of these was a change dropped while the client
// got the app's 200.
func TestThirdPartyAppOfTheProtocolDoc(t *testing.T) {
	t.Parallel()
	harness.Require(t, "php-fpm8.2", "gunicorn", "redis-server")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docapp.py"), []byte(docProtocolApp), 0o644); err != nil {
		t.Fatal(err)
	}
	g := harness.StartGunicorn(t, harness.GunicornOptions{Dir: dir, App: "docapp:application", Workers: 1,
		Env: []string{"SG_SECRET=" + sessionTestKey}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gunicorn log:\n%s", g.Log())
		}
	})
	red := harness.StartRedis(t)
	gw := startDjangoGateway(t, g.URL(), "SESSIONGATE_REDIS_URL="+red.URL())

	get := func(path, cookie string) (int, string, *http.Cookie) {
		t.Helper()
		res, err := sessionClient.Do(gw.request("GET", path, cookie))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var set *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == "sessionid" {
				set = c
			}
		}
		return res.StatusCode, string(b), set
	}

	status, _, login := get("/dj/login/", "")
	if status != 200 || login == nil || login.MaxAge <= 0 {
		t.Fatalf("login remembered for 20 years: %d, cookie %v", status, login)
	}
	if status, body, _ := get("/dj/me/", login.Value); status != 200 || body != `{"_user":"alice"}` {
		t.Fatalf("after the login: %d %q", status, body)
	}

	status, _, promoted := get("/dj/promote/", login.Value)
	if status != 200 || promoted == nil || promoted.Value == login.Value || promoted.MaxAge <= 0 {
		t.Fatalf("touch with rotate: %d, cookie %v", status, promoted)
	}
	if status, body, _ := get("/dj/me/", promoted.Value); status != 200 || body != `{"_user":"alice"}` {
		t.Fatalf("new ID: %d %q", status, body)
	}
	if _, body, _ := get("/dj/me/", login.Value); body != `{}` {
		t.Fatalf("old ID still opens the session: %q", body)
	}

	if status, _, set := get("/dj/broken/", promoted.Value); status != http.StatusInternalServerError || set != nil {
		t.Fatalf("signed change with an unknown rotate: %d, cookie %v; want 500", status, set)
	}
	if _, body, _ := get("/dj/me/", promoted.Value); body != `{"_user":"alice"}` {
		t.Fatalf("after the refused change: %q", body)
	}
}
