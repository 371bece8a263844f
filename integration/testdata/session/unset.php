<?php
// unset.php?k=name : removes one key.
session_start();
unset($_SESSION[$_GET['k'] ?? 'k']);
header('Content-Type: text/plain');
echo "ok";
