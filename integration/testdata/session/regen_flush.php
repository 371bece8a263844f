<?php
// A login page whose output leaves before its session is written:
// session_regenerate_id(true), then output that sends the headers (and the
// new session's cookie), then the login's change, written at the end of
// the request, which comes once the file ?go= exists (at most 10 s).
// ?keep=1: session_regenerate_id(false), which keeps the old session.
session_start();
session_regenerate_id(empty($_GET['keep']));
while (ob_get_level()) {
    ob_end_flush();
}
echo "started\n";
flush();
$deadline = microtime(true) + 10;
while (!file_exists((string)($_GET['go'] ?? '')) && microtime(true) < $deadline) {
    usleep(20000);
}
$_SESSION['logged'] = true;
echo "done";
