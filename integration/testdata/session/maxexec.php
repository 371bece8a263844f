<?php
set_time_limit(1);
session_start();
$_SESSION['maxexec'] = 1;
$x = 0;
while (true) { $x++; }
