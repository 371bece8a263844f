<?php
// big.php?set=N stores an N MiB value (binary; with ascii=1, the letter a),
// big.php?kb=N one of N KiB; without either, prints the value's length and
// hash.
session_start();
header('Content-Type: text/plain');
if (isset($_GET['set']) || isset($_GET['kb'])) {
    $bytes = isset($_GET['kb']) ? max(1, (int)$_GET['kb']) << 10 : max(1, (int)$_GET['set']) << 20;
    $_SESSION['big'] = isset($_GET['ascii'])
        ? str_repeat('a', $bytes)
        : substr(str_repeat(hash('sha256', 'sessiongate', true), intdiv($bytes, 32) + 1), 0, $bytes);
    echo "set";
} else {
    $b = $_SESSION['big'] ?? '';
    echo strlen($b), ' ', hash('sha256', $b);
}
