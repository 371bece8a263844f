<?php
// A slow page that only reads the session, the way README advises: opening
// it with read_and_close releases the lock at once. ?ms= is how long the
// rest of the page takes.
session_start(['read_and_close' => true]);
$user = $_SESSION['user'] ?? '';
usleep((int)($_GET['ms'] ?? 3000) * 1000);
echo "slept " . $user;
