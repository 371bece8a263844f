<?php
// A slow page that lets the session go with sessiongate_release() (the
// README's advice for slow pages and applications with sessions of their
// own), then runs code that starts the session only when session_id() says
// none is active, as many WordPress plugins do: that code must still start
// it, and its change must be saved. ?ms= is how long the page takes; with
// ?started=, it creates that file once the session is released.
sessiongate_release();
if (isset($_GET['started'])) {
    touch($_GET['started']);
}
usleep((int)($_GET['ms'] ?? 3000) * 1000);
if (!session_id()) {
    session_start();
    $_SESSION['plugin'] = 'kept';
}
echo "slept " . ($_SESSION['user'] ?? '');
