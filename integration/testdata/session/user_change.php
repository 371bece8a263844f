<?php
// user_change.php?op=logout|login: changes who is logged in, closes the
// session, then prints sessiongate_user_id(), which must see the change.
session_start();
if (($_GET['op'] ?? '') === 'logout') {
    session_destroy();
} else {
    session_regenerate_id(true);
    $_SESSION['_auth_user_id'] = '9';
    session_write_close();
}
header('Content-Type: text/plain');
$uid = sessiongate_user_id();
echo $uid === null ? "anonymous" : "user:" . $uid;
