<?php
// Overlapping requests in merge mode writing many keys, as an app keying
// its session by what clients send (product slugs) does: reads the
// session, creates the file ?started=, waits until the file ?go= exists,
// then sets ?n= keys of some 100 bytes each to ?v=.
session_start();
touch($_GET['started']);
for ($i = 0; $i < 3000 && !file_exists($_GET['go']); $i++) {
    usleep(10000);
}
for ($i = 0; $i < (int)$_GET['n']; $i++) {
    $_SESSION[str_repeat('k', 100) . $i] = $_GET['v'];
}
header('Content-Type: text/plain');
echo "ok";
