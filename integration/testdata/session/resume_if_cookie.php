<?php
// Code that resumes a session only for a visitor who has one, and treats
// everyone else as logged out without starting a session: it tests
// isset($_COOKIE[session_name()]) before session_start(), as Yii's
// Session::getHasSessionId() and CakePHP's Session::_hasSession() do.
$has = isset($_COOKIE[session_name()]);
if ($has) {
    session_start();
}
header('Content-Type: application/json');
echo json_encode(['has' => $has, 'user' => $_SESSION['user'] ?? null]);
