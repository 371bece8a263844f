<?php
// A change made after 1 MiB of output must persist.
session_start();
echo str_repeat("x", 1 << 20);
flush();
$_SESSION['late'] = 'yes';
