<?php
// Reads the session, waits ?ms=, then sets ?k= to ?v=: overlapping requests
// in merge mode. Answers "ok START END": when session_start returned and
// when the wait ended (microtime), so a test can tell whether two requests
// overlapped.
session_start();
$start = microtime(true);
usleep((int)($_GET['ms'] ?? 0) * 1000);
$end = microtime(true);
$_SESSION[$_GET['k']] = $_GET['v'];
printf("ok %.6f %.6f", $start, $end);
