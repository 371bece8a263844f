<?php
// A login form that keys its CSRF token on the ID of a session it leaves
// empty (Icinga Web 2: session_start(); session_write_close();): the post
// must come back with the same ID, as it does with PHP's files handler,
// which keeps the empty session and sends its cookie.
//   ?mode=write  session_start(); session_write_close();   (the default)
//   ?mode=close  session_start(['read_and_close' => true]);
//   ?mode=abort  session_start(); session_abort();
//   ?mode=php    PHP's own "php" format, in which an empty session is ""
//                as read: PHP's lazy write only touches it
$mode = $_GET['mode'] ?? 'write';
if ($mode === 'php') {
    ini_set('session.serialize_handler', 'php');
}
if ($mode === 'close') {
    session_start(['read_and_close' => true]);
} else {
    session_start();
    if ($mode === 'abort') {
        session_abort();
    } else {
        session_write_close();
    }
}
header('Content-Type: text/plain');
echo session_id();
