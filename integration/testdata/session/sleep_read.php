<?php
// Reads the session, keeps it open (and locked) for ?ms= milliseconds,
// changes nothing.
session_start();
usleep((int)($_GET['ms'] ?? 1000) * 1000);
echo "read " . ($_SESSION['user'] ?? '');
