<?php
// set.php?k=name&v=value : sets one key (value JSON-decoded when it parses).
session_start();
$v = json_decode($_GET['v'] ?? 'null', true);
$_SESSION[$_GET['k'] ?? 'k'] = ($v === null && ($_GET['v'] ?? '') !== 'null') ? ($_GET['v'] ?? '') : $v;
header('Content-Type: text/plain');
echo "ok";
