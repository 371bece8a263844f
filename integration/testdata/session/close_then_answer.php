<?php
// Changes the session and closes it in the middle of the script, then
// answers: the change goes to the gateway over stderr before the response.
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
session_write_close();
echo "closed";
