<?php
session_start();
$_SESSION['a'] = 1;
session_write_close();
sleep(2);
echo "slept";
