<?php
// logout_restart.php: a logout page that starts a fresh session for its
// flash message, the usual session_destroy(); session_start(); pattern.
session_start();
session_destroy();
session_start();
$_SESSION['flash'] = 'logged out';
echo session_id() !== '' ? 'restarted' : 'none';
