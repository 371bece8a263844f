<?php
// reopen.php: the session is written, closed, opened again and written
// again in one request.
//   ?mode=new     on a new visitor: the first close writes an empty session
//   ?mode=revert  sets k to "B", closes, reopens and sets k back to what it
//                 was when the request started, and n to 2
session_start();
$mode = $_GET['mode'] ?? '';
$first = $_SESSION['k'] ?? null;
if ($mode === 'revert') {
    $_SESSION['k'] = 'B';
}
session_write_close();
session_start();
if ($mode === 'new') {
    $_SESSION['user'] = 'ana';
} elseif ($mode === 'revert') {
    $_SESSION['k'] = $first;
    $_SESSION['n'] = 2;
}
header('Content-Type: text/plain');
echo session_id();
