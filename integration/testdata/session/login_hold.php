<?php
// A slow login: holds the session (and so its strict lock) for ?ms=
// milliseconds, creating the file ?started= once it has it, then
// regenerates the ID as a login does and writes.
session_start();
if (isset($_GET['started'])) {
    touch($_GET['started']);
}
usleep((int)($_GET['ms'] ?? 1000) * 1000);
session_regenerate_id(true);
$_SESSION['logged'] = 'yes';
echo session_id();
