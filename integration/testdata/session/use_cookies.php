<?php
// An application that turns PHP's own session cookie back on (a framework's
// session options do), under the name it picks.
ini_set('session.use_cookies', '1');
session_name($_GET['name'] ?? 'PHPSESSID');
session_start();
$_SESSION['uc'] = ($_SESSION['uc'] ?? 0) + 1;
if (isset($_GET['regen'])) {
    session_regenerate_id(true);
}
setcookie('theme', 'dark');
echo session_id();
