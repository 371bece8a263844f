package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
)

// TestSessionStrictLockHeldThroughPHPShutdown: PHP's files handler keeps
// the session's lock until its final write, which comes after object
// destructors, shutdown functions registered during shutdown and output
// callbacks, so counters a page increments there lose nothing under
// concurrent requests of one session. The prepend writes the session
// earlier (its last shutdown function, while the headers can carry it);
// the gateway must keep the lock until PHP's final write all the same,
// or another request reads the session before the late change and one of
// the two changes is lost (200 concurrent destructor increments ended at
// 44). It does so for a script it has seen change its session late, from
// that script's next request on. Nothing is merged then, so nothing
// "overrode" anything.
func TestSessionStrictLockHeldThroughPHPShutdown(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{})
	ck := s.newSession(t)
	// One at a time first, through each gateway: every late change is
	// kept, and each gateway learns that the script changes its session
	// after its shutdown write (its log says so).
	for _, g := range s.gws {
		for i := 0; i < 3; i++ {
			if resp, body, _ := g.get(t, "/late_counters.php", ck); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("late_counters.php: %d %q", resp.StatusCode, body)
			}
		}
		if !strings.Contains(g.Logs.String(), "now keep the session's lock until PHP ends") {
			t.Errorf("no log line naming the script that changes its session late:\n%.3000s", g.Logs.String())
		}
	}
	const clients, each = 8, 20
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				resp, body, _ := s.gws[c%2].get(t, "/late_counters.php", ck)
				if resp.StatusCode != 200 {
					t.Errorf("late_counters.php: %d %s", resp.StatusCode, body)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	d := string(s.gws[0].dump(t, ck).Data)
	n := strconv.Itoa(clients*each + 6)
	for _, k := range []string{"d", "s", "o"} {
		if !strings.Contains(d, `"`+k+`":`+n) {
			t.Errorf("after %d requests the session is %s: %q (destructor d, shutdown function s, output callback o) should be %s", clients*each+6, d, k, n)
		}
	}
	for i, g := range s.gws {
		if l := g.Logs.String(); strings.Contains(l, "overrode concurrent changes") {
			t.Errorf("gateway %d merged a strict-mode write:\n%.3000s", i, l)
		}
	}
}

// TestPrependHidesInternalParamsFromEnv: php-fpm copies every FastCGI
// param into $_ENV as well as $_SERVER when variables_order holds "E", as
// PHP's built-in "EGPCS" does (no php.ini, as the official Docker image
// runs), and phpinfo(), Whoops and Symfony's error pages print $_ENV. The
// gateway's params (the frame key, the nonce, the session's ID and data)
// must be in neither. getenv() still answers for them in php-fpm, which
// reads its FastCGI params there (README, docs/protocol.md).
func TestPrependHidesInternalParamsFromEnv(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{fpm: harness.PHPFPMOptions{NoPHPIni: true}})
	if err := os.WriteFile(filepath.Join(s.fpm.DocRoot, "env_keys.php"), []byte(`<?php
session_start();
header('Content-Type: text/plain');
$internal = fn(array $a) => implode(',', array_filter(array_keys($a), fn($k) => is_string($k) && str_starts_with($k, 'SESSIONGATE_')));
echo ini_get('variables_order'), '|env:', $internal($_ENV), '|server:', $internal($_SERVER);
echo '|getenv:', getenv('SESSIONGATE_FRAME_KEY') === false ? 'no' : 'yes';
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ck := s.newSession(t)
	resp, body, _ := s.gws[0].get(t, "/env_keys.php", ck)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(body, "EGPCS|") {
		t.Fatalf("PHP's built-in variables_order expected, got %q", body)
	}
	if !strings.Contains(body, "|env:|server:|") {
		t.Fatalf("the gateway's internal params reach the application: %q", body)
	}
	// What the documentation says of getenv().
	if !strings.HasSuffix(body, "|getenv:yes") {
		t.Errorf("getenv() no longer answers for the gateway's params (update README and docs/protocol.md): %q", body)
	}
	// The session works all the same.
	if d := s.gws[0].dump(t, ck); !strings.Contains(string(d.Data), `"n":1`) {
		t.Fatalf("session %s, want n=1", d.Data)
	}
}

// TestSessionLargeWithinPHPMemoryLimit: a session the gateway accepts (up
// to 16 MiB of PHP text) must be writable by a page that PHP's files
// handler runs within memory_limit (128M, Debian's php.ini): the prepend
// held the session text some six times over while it sealed and encoded
// a message (the encoded session, op+id+payload, the ciphertext, iv|tag|
// ciphertext, its base64, the 800-byte chunks), and died at base64_encode
// with a 14 MiB session beside 60 MB of the application's own data, where
// the files handler peaks at 78 MB.
func TestSessionLargeWithinPHPMemoryLimit(t *testing.T) {
	t.Parallel()
	s := startSessionStack(t, stackOpts{
		env: []string{"SESSIONGATE_REDIS_TIMEOUT=5s"},
		fpm: harness.PHPFPMOptions{AdminValues: map[string]string{"memory_limit": "128M"}},
	})
	if err := os.WriteFile(filepath.Join(s.fpm.DocRoot, "big_memory.php"), []byte(`<?php
session_start();
$_SESSION['big'] = str_repeat(md5((string)($_SESSION['n'] ?? 0)), (int)$_GET['mb'] << 15);
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$GLOBALS['app'] = str_repeat('p', (int)$_GET['app'] << 20); // the application's own data
echo 'peak=', memory_get_peak_usage();
`), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body, ck := s.gws[0].get(t, "/big_memory.php?mb=14&app=60", "")
	if resp.StatusCode != 200 || ck == "" {
		t.Fatalf("a new 14 MiB session beside 60 MB of application data: %d %.300s\nphp-fpm: %.1000s", resp.StatusCode, body, s.fpm.Log())
	}
	if d := s.gws[0].dump(t, ck); !strings.Contains(string(d.Data), `"n":1`) {
		t.Fatalf("stored %.200s", d.Data)
	}
	// The session loaded, changed and written again (the prepend sealed
	// it with the text, the plaintext and the ciphertext all held: 500
	// from 20 MB of application data on). Less room than the files
	// handler has: PHP keeps the params the session came in (base64, 4/3
	// of its size) twice for the whole request ($_SERVER's and the filter
	// extension's copy), whatever the prepend does with $_SERVER.
	resp, body, _ = s.gws[0].get(t, "/big_memory.php?mb=14&app=30", ck)
	if resp.StatusCode != 200 {
		t.Fatalf("the 14 MiB session loaded and written again: %d %.300s\nphp-fpm: %.1000s", resp.StatusCode, body, s.fpm.Log())
	}
	if d := s.gws[0].dump(t, ck); !strings.Contains(string(d.Data), `"n":2`) {
		t.Fatalf("stored %.200s", d.Data)
	}
}
