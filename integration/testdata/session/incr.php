<?php
// incr.php?k=name : adds 1 to the session key name and prints it.
session_start();
$k = $_GET['k'] ?? 'n';
$_SESSION[$k] = ($_SESSION[$k] ?? 0) + 1;
header('Content-Type: text/plain');
echo $_SESSION[$k];
