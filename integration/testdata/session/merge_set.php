<?php
// Reads the session, waits ?ms=, then sets ?k= to ?v=: overlapping requests
// in merge mode.
session_start();
usleep((int)($_GET['ms'] ?? 0) * 1000);
$_SESSION[$_GET['k']] = $_GET['v'];
echo "ok";
