<?php
// deep.php?levels=N : stores an array nested N levels deep under 'deep'.
session_start();
$v = 'bottom';
for ($i = 0; $i < (int)($_GET['levels'] ?? 70); $i++) {
    $v = [$v];
}
$_SESSION['deep'] = $v;
echo "ok";
