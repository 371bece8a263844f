package integration

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// lateUndoPHP changes the session (a=2) and throws the change away after
// the script's end, where PHP's own handler has not written it yet: in an
// object destructor, a shutdown function registered during shutdown, an
// output callback. ?step=set stores a=1 first, ?step=get shows the session.
var lateUndoPHP = map[string]string{
	"dtorabort":   `$GLOBALS['keep'] = new class { function __destruct() { session_abort(); } };`,
	"sdnestabort": `register_shutdown_function(function () { register_shutdown_function(function () { session_abort(); }); });`,
	"obabort":     `ob_start(function ($b) { if (session_status() === PHP_SESSION_ACTIVE) { session_abort(); } return $b; });`,
	"dtorreset":   `$GLOBALS['keep'] = new class { function __destruct() { $_SESSION['d'] = 1; session_reset(); $_SESSION['e'] = 1; } };`,
}

const lateUndoHead = `<?php
session_start();
if (($_GET['step'] ?? '') === 'set') { $_SESSION = ['a' => 1]; return; }
if (($_GET['step'] ?? '') === 'get') { ksort($_SESSION); echo json_encode($_SESSION); return; }
$_SESSION['a'] = 2;
`

// TestSessionLateAbortAndResetUndoChange: session_abort() and
// session_reset() after the prepend's end-of-request write (destructor,
// late shutdown function, output callback) throw the script's change away,
// as with PHP's files handler, both the first time (the gateway let the
// lock go at that write: the undo is merged in) and once the gateway holds
// the lock for the script to PHP's end. The prepend had already stored the
// change and kept it.
func TestSessionLateAbortAndResetUndoChange(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"dtorabort":   `{"a":1}`,
		"sdnestabort": `{"a":1}`,
		"obabort":     `{"a":1}`,
		"dtorreset":   `{"a":1,"e":1}`,
	}
	nativeRoot := t.TempDir()
	st := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{Children: 2}})
	for name, tail := range lateUndoPHP {
		for _, dir := range []string{nativeRoot, st.fpm.DocRoot} {
			if err := os.WriteFile(filepath.Join(dir, name+".php"), []byte(lateUndoHead+tail+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	native := startNativeSessionSite(t, nativeRoot)
	nativeGet := func(path, cookie string) (string, string) {
		req, _ := http.NewRequest("GET", native+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := sessionClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, c := range resp.Cookies() {
			if c.Name == "PHPSESSID" {
				cookie = c.Name + "=" + c.Value
			}
		}
		return string(b), cookie
	}
	for name := range lateUndoPHP {
		_, nck := nativeGet("/"+name+".php?step=set", "")
		_, _, gck := st.gws[0].get(t, "/"+name+".php?step=set", "")
		// The first run: the gateway let the lock go at the prepend's
		// write; from the second on it holds it to PHP's end.
		for run := 1; run <= 2; run++ {
			nativeGet("/"+name+".php", nck)
			st.gws[run%2].get(t, "/"+name+".php", gck)
			nativeData, _ := nativeGet("/"+name+".php?step=get", nck)
			_, gwData, _ := st.gws[0].get(t, "/"+name+".php?step=get", gck)
			if nativeData != want[name] {
				t.Fatalf("%s, run %d: PHP's files handler stored %s, the test wants %s", name, run, nativeData, want[name])
			}
			if gwData != nativeData {
				t.Errorf("%s, run %d: the gateway stored %s, PHP's files handler %s", name, run, gwData, nativeData)
			}
		}
	}
}
