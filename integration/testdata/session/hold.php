<?php
// Holds the session (and so its strict lock) for ?ms= milliseconds. With
// ?started=, it creates that file once it has the session, so a test can
// wait for the lock to be held rather than sleep and hope.
session_start();
if (isset($_GET['started'])) {
    touch($_GET['started']);
}
usleep((int)($_GET['ms'] ?? 1000) * 1000);
$_SESSION['held'] = ($_SESSION['held'] ?? 0) + 1;
echo "held";
