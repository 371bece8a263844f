<?php
// A page like phpMyAdmin's: its output just passes the output buffer
// (the headers leave with the first 4 KiB, as with output_buffering=4096),
// then the session changes at the end of the request by more than one
// stderr frame holds.
ob_start(null, 4096);
session_start();
echo str_repeat('x', 5000);
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$_SESSION['pad'] = str_repeat('p', 6000);
