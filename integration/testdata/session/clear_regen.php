<?php
// A logout that clears the session and moves it to a new ID instead of
// destroying it: $_SESSION = []; session_regenerate_id(true);
// ?flash=1 then sets a key in the new session.
session_start();
$_SESSION = [];
session_regenerate_id(true);
if (!empty($_GET['flash'])) {
    $_SESSION['flash'] = 'bye';
}
echo "ok";
