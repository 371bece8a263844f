<?php
// deep.php?levels=N : stores an array nested N levels deep under 'deep';
// &regen=1 then moves the session to a new ID (session_regenerate_id(true)).
session_start();
$v = 'bottom';
for ($i = 0; $i < (int)($_GET['levels'] ?? 70); $i++) {
    $v = [$v];
}
$_SESSION['deep'] = $v;
if (!empty($_GET['regen'])) {
    session_regenerate_id(true);
}
echo "ok";
