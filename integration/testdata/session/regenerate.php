<?php
// ?twice=1 regenerates twice (a login, then a "remember me" step).
session_start();
$_SESSION['regenerated'] = true;
session_regenerate_id(true);
if (!empty($_GET['twice'])) {
    session_regenerate_id(true);
}
echo session_id();
