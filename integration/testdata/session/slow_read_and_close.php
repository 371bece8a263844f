<?php
// A slow page that only reads the session, the way README advises: opening
// it with read_and_close releases the lock at once. ?ms= is how long the
// rest of the page takes; with ?started=, it creates that file once the
// session is read (and released).
session_start(['read_and_close' => true]);
$user = $_SESSION['user'] ?? '';
if (isset($_GET['started'])) {
    touch($_GET['started']);
}
usleep((int)($_GET['ms'] ?? 3000) * 1000);
echo "slept " . $user;
