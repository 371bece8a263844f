<?php
// Holds the session (and so its strict lock) for ?ms= milliseconds.
session_start();
usleep((int)($_GET['ms'] ?? 1000) * 1000);
$_SESSION['held'] = ($_SESSION['held'] ?? 0) + 1;
echo "held";
