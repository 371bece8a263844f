<?php
// A new visitor's page that starts its session and sends its first output
// (with it the session cookie) before it is done, then, once the file ?go=
// exists (at most 10 s), ends the session it never wrote (a logout page's
// session_destroy()): nothing is stored.
session_start();
while (ob_get_level()) {
    ob_end_flush();
}
echo "started\n";
flush();
$deadline = microtime(true) + 10;
while (!file_exists((string)($_GET['go'] ?? '')) && microtime(true) < $deadline) {
    usleep(20000);
}
session_destroy();
echo "done";
