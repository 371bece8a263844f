<?php
// Symfony's php_bridge front controller: the session is started, then the
// Request made from the globals asks whether the visitor came with a
// session (Request::hasPreviousSession(): is the cookie named
// session_name() in $_COOKIE?), as Symfony's firewall does before it loads
// the logged-in user.
//   ?new=1   a visitor without a session: start one and count
//   ?name=X  the application names its session first
if (isset($_GET['name'])) {
    session_name($_GET['name']);
}
session_start();
$previous = isset($_COOKIE[session_name()]);
if ($previous || isset($_GET['new'])) {
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
}
header('Content-Type: application/json');
echo json_encode(['previous' => $previous, 'n' => $_SESSION['n'] ?? null]);
