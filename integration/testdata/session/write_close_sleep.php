<?php
// Writes and closes the session, then sleeps 3 s. With ?closed=, it creates
// that file once the session is closed.
session_start();
$_SESSION['a'] = 1;
session_write_close();
if (isset($_GET['closed'])) {
    touch($_GET['closed']);
}
sleep(3);
echo "slept";
