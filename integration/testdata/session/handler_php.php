<?php
// A script that picks PHP's own session format at run time, as legacy
// code does: ini_set('session.serialize_handler', ?h=) before
// session_start(). Answers the session it sees as JSON, then adds one to
// "visits" and sets ?k= to ?v= (JSON) when given.
ini_set('session.serialize_handler', $_GET['h'] ?? 'php');
if (!session_start()) {
    http_response_code(500);
    echo "session_start failed";
    return;
}
echo json_encode($_SESSION);
$_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
if (isset($_GET['k'])) {
    $_SESSION[$_GET['k']] = json_decode($_GET['v'] ?? 'null', true);
}
// ?op=regenerate: a login (the data moves to a new ID); ?op=restart: a
// logout followed by a new session in the same request; ?op=unset: old
// clean-up code's unset($_SESSION), after which PHP still writes the
// session it holds.
if (($_GET['op'] ?? '') === 'unset') {
    unset($_SESSION);
} elseif (($_GET['op'] ?? '') === 'regenerate') {
    session_regenerate_id(true);
} elseif (($_GET['op'] ?? '') === 'restart') {
    session_destroy();
    session_start();
    $_SESSION['fresh'] = 1;
}
