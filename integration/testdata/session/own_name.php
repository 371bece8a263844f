<?php
// own_name.php: an application whose session.name is the gateway's cookie
// name. ?own=1 picks its own session ID with strict mode off (PHP then
// sends its own cookie under that name); ?logout=1 follows the PHP
// manual's logout recipe, which expires the cookie of session_name().
session_name('sessionid');
if (isset($_GET['own'])) {
    ini_set('session.use_strict_mode', '0');
    session_id('sgcustomid0123456789abcdef');
}
session_start();
if (isset($_GET['logout'])) {
    setcookie(session_name(), '', time() - 42000, '/');
}
header('Content-Type: application/json');
echo json_encode(['user' => $_SESSION['user'] ?? null]);
