<?php
// Output past the 4 KiB output buffer (php.ini-production's
// output_buffering) and a session change: ?step=close changes the session
// and closes it with session_write_close() before any output; ?step=late
// changes it after the output started.
ob_start(null, 4096);
session_start();
if (($_GET['step'] ?? '') === 'close') {
    $_SESSION['closed'] = 1;
    session_write_close();
    echo str_repeat('x', 5000);
} else {
    echo str_repeat('x', 5000);
    $_SESSION['late'] = 1;
}
