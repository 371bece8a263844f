<?php
// release_wait.php: reopen_wait.php's slow page, letting the session go
// with sessiongate_release() (before any session_start()) instead of
// read_and_close: creates the file ?closed=, waits until the file ?go=
// exists, then starts the session and sets ?k= to ?v=, or with ?destroy=1
// destroys it (a logout). ?regen=1 calls session_regenerate_id(true) (a
// login) before setting ?k=.
sessiongate_release();
touch($_GET['closed']);
for ($i = 0; $i < 3000 && !file_exists($_GET['go']); $i++) {
    usleep(10000);
}
session_start();
if (!empty($_GET['destroy'])) {
    session_destroy();
    echo "destroyed";
    return;
}
if (!empty($_GET['regen'])) {
    session_regenerate_id(true);
}
$_SESSION[$_GET['k']] = $_GET['v'];
header('Content-Type: text/plain');
echo "ok";
