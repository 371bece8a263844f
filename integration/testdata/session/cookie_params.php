<?php
// What many applications do before session_start() on every request:
// shape the session cookie, then count visits in the session.
session_set_cookie_params(['lifetime' => 0, 'path' => '/', 'httponly' => true, 'samesite' => 'Lax']);
session_name('AppSession');
session_start();
$_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
echo $_SESSION['visits'];
