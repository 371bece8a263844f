<?php
// big.php?set=1 stores a 1 MiB value; without it, prints its length and hash.
session_start();
header('Content-Type: text/plain');
if (isset($_GET['set'])) {
    $_SESSION['big'] = str_repeat(hash('sha256', 'sessiongate', true), 32768); // 1 MiB binary
    echo "set";
} else {
    $b = $_SESSION['big'] ?? '';
    echo strlen($b), ' ', hash('sha256', $b);
}
