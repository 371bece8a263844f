<?php
// big.php?set=N stores an N MiB value (binary; with ascii=1, the letter a);
// without set, prints the value's length and hash.
session_start();
header('Content-Type: text/plain');
if (isset($_GET['set'])) {
    $n = max(1, (int)$_GET['set']);
    $_SESSION['big'] = isset($_GET['ascii'])
        ? str_repeat('a', $n << 20)
        : str_repeat(hash('sha256', 'sessiongate', true), 32768 * $n);
    echo "set";
} else {
    $b = $_SESSION['big'] ?? '';
    echo strlen($b), ' ', hash('sha256', $b);
}
