<?php
// Shows the session's "held" counter (hold.php's) after ?ms= milliseconds,
// keeping the session open to the end of the script without changing it.
session_start();
usleep((int)($_GET['ms'] ?? 0) * 1000);
header('Content-Type: text/plain');
echo "held=" . ($_SESSION['held'] ?? 0);
