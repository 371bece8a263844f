<?php
// reopen_wait.php: a slow page that lets its session go early and changes
// it later: reads the session with read_and_close, creates the file
// ?closed=, waits until the file ?go= exists, then starts the session again
// and sets ?k= to ?v=, or with ?destroy=1 destroys it (a logout). ?regen=1
// calls session_regenerate_id(true) (a login) before setting ?k=. With
// ?release=1 it lets the session go with sessiongate_release() (no
// session started) instead of read_and_close.
if (!empty($_GET['release'])) {
    sessiongate_release();
} else {
    session_start(['read_and_close' => true]);
}
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
