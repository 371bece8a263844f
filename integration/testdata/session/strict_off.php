<?php
// strict_off.php: what some applications do before every session_start()
// (daloRADIUS's session helper, code following the PHP manual's custom
// session regeneration): turn session.use_strict_mode off, so PHP takes
// whatever session ID the request's PHPSESSID cookie names.
ini_set('session.use_strict_mode', '0');
session_start();
$_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
header('Content-Type: application/json');
echo json_encode(['user' => $_SESSION['user'] ?? null, 'visits' => $_SESSION['visits']]);
