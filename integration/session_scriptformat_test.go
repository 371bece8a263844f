package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// wakeCountPHP is the PHP manual's __sleep/__wakeup example (a connection
// that reconnects in __wakeup) in a session of PHP's own "php" format, or
// "php_binary", with the same object under a second key and a reference
// between two keys, and answers how many times its objects woke and slept.
const wakeCountPHP = `<?php
ini_set('session.serialize_handler', $_GET['h'] ?? 'php');
class Conn { public $dsn = 'db'; public $link; public static $connects = 0; public static $sleeps = 0;
  function __construct() { $this->connect(); }
  function connect() { self::$connects++; $this->link = 'link' . self::$connects; }
  function __sleep() { self::$sleeps++; return ['dsn']; }
  function __wakeup() { $this->connect(); } }
session_start();
if (!isset($_SESSION['c'])) {
    $_SESSION['c'] = new Conn; $_SESSION['same'] = $_SESSION['c'];
    $_SESSION['n'] = 0; $_SESSION['alias'] = &$_SESSION['n'];
    Conn::$connects = 0;
}
$woke = Conn::$connects;
$same = $_SESSION['same'] === $_SESSION['c'] ? 'same' : 'copy';
$_SESSION['alias']++;
session_write_close();
echo "wakeups=$woke sleeps=", Conn::$sleeps, " $same n=", $_SESSION['n'];
`

// TestSessionScriptFormatWakesObjectsOnce: a script in PHP's own "php"
// or "php_binary" session format wakes each object of its session once
// per session_start() and puts it to sleep once per write, as with PHP's
// files handler, and its object and reference shared between keys stay
// shared. The prepend built the session's objects to convert it to the
// script's format and back: every __wakeup() ran twice (a database
// reconnect in it opened two connections per page), __sleep() three
// times.
func TestSessionScriptFormatWakesObjectsOnce(t *testing.T) {
	t.Parallel()
	st := startSessionStack(t, stackOpts{})
	if err := os.WriteFile(filepath.Join(st.fpm.DocRoot, "wake.php"), []byte(wakeCountPHP), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"php", "php_binary"} {
		_, first, ck := st.gws[0].get(t, "/wake.php?h="+h, "")
		if first != "wakeups=0 sleeps=1 same n=1" {
			t.Errorf("%s, first request: %q, want \"wakeups=0 sleeps=1 same n=1\"", h, first)
		}
		for n := 2; n <= 3; n++ {
			want := fmt.Sprintf("wakeups=1 sleeps=1 same n=%d", n)
			if _, body, _ := st.gws[n%2].get(t, "/wake.php?h="+h, ck); body != want {
				t.Errorf("%s, request %d: %q, want %q (PHP's files handler)", h, n, body, want)
			}
		}
	}
}
