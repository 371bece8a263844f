<?php
// finish_request.php?k=name&v=value: sets a key, closes the session, then
// answers the client with fastcgi_finish_request() and goes on working: the
// order README's sessions section asks of scripts that finish early.
session_start();
$_SESSION[$_GET['k'] ?? 'k'] = $_GET['v'] ?? '';
session_write_close();
header('Content-Type: text/plain');
echo "ok";
fastcgi_finish_request();
usleep(200000); // work after the answer; the session is already saved
