<?php
// enum_role.php: an application that keeps an enum in the session (stores
// it with ?op=set, twice with ?op=twice), and dumps the session as JSON (with the enum's value).
// Other scripts of the site do not define the enum, as another application
// sharing the session would not.
enum SgRole: string
{
    case Admin = 'admin';
}
session_start();
if (($_GET['op'] ?? '') === 'set') {
    $_SESSION['role'] = SgRole::Admin;
}
if (($_GET['op'] ?? '') === 'twice') {
    // The same case under a second key: PHP writes it as r: to the first.
    $_SESSION['role'] = SgRole::Admin;
    $_SESSION['granted'] = [SgRole::Admin];
}
header('Content-Type: application/json');
echo json_encode($_SESSION);
