<?php
session_start();
$_SESSION['exited'] = ($_SESSION['exited'] ?? 0) + 1;
exit("bye");
