<?php
// A new visitor's page that starts its session, then sends its first output
// (with it the headers and the session cookie) before it is done, as a page
// over output_buffering's 4 KiB does; the session is written at its end.
// It ends once the file ?go= exists (at most 10 s). With ?destroy=1 it
// ends the session it never wrote instead (a logout page's
// session_destroy()): nothing is stored.
session_start();
$destroy = isset($_GET['destroy']);
if (!$destroy) {
    $_SESSION['csrf'] = 't0k';
}
while (ob_get_level()) {
    ob_end_flush();
}
echo "started\n";
flush();
$deadline = microtime(true) + 10;
while (!file_exists((string)($_GET['go'] ?? '')) && microtime(true) < $deadline) {
    usleep(20000);
}
if ($destroy) {
    session_destroy();
}
echo "done";
