<?php
// Overlapping requests in merge mode, ordered without timing: reads the
// session, creates the file ?started=, waits until the file ?go= exists,
// then sets ?k= to ?v=. With ?k2=, it then closes the session, starts it
// again (its own copy) and sets ?k2= to ?v2= as well. ?destroy=1 destroys
// the session instead of setting anything. ?regen=1 calls
// session_regenerate_id(true) (a login) before setting ?k=; with ?flush=1
// the page's output (and so its headers) leaves before its write.
session_start();
touch($_GET['started']);
for ($i = 0; $i < 3000 && !file_exists($_GET['go']); $i++) {
    usleep(10000);
}
if (!empty($_GET['destroy'])) {
    session_destroy();
    echo "destroyed";
    return;
}
if (!empty($_GET['regen'])) {
    session_regenerate_id(true);
}
if (!empty($_GET['flush'])) {
    header('Content-Type: text/plain');
    echo "o";
    while (ob_get_level() > 0) {
        ob_end_flush();
    }
    flush();
    usleep(300000); // the headers are surely out before the write
}
if (isset($_GET['unset'])) {
    unset($_SESSION[$_GET['unset']]);
} else {
    $_SESSION[$_GET['k']] = $_GET['v'];
}
if (isset($_GET['k2'])) {
    session_write_close();
    session_start();
    $_SESSION[$_GET['k2']] = $_GET['v2'];
}
header('Content-Type: text/plain');
echo "ok";
