<?php
session_start();
$_SESSION['a'] = 1;
session_write_close();
sleep(3);
echo "slept";
