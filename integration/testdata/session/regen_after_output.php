<?php
// A login page whose output starts before it regenerates the ID (more than
// output_buffering=4096, php.ini-production's value, holds): PHP refuses
// the regeneration with its "headers already sent" warning; the session
// keeps its ID and what the page stores. ?early=1 regenerates first, as
// the README advises.
ob_start(null, 4096);
session_start();
if (!empty($_GET['early'])) {
    $ok = session_regenerate_id(true);
}
echo str_repeat('x', 5000);
if (empty($_GET['early'])) {
    $ok = @session_regenerate_id(true);
}
$_SESSION['login'] = 'ana';
echo "\n", $ok ? 'regenerated ' : 'refused ', session_id();
