<?php
// A page that clears every header it set so far with header_remove() (no
// argument), as some legacy frameworks do before their own: the session
// still works, and the gateway must not take it for a missing prepend.
session_start();
$_SESSION['cleared'] = ($_SESSION['cleared'] ?? 0) + 1;
header('X-App: 1');
header_remove();
header('Content-Type: text/plain');
echo "cleared";
