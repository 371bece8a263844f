<?php
// A slow page (a report, a stream) that never starts its session. The
// gateway locked the session before PHP ran, so it stays locked until the
// script ends. ?ms= is how long it takes; with ?started=, it creates that
// file when it starts.
if (isset($_GET['started'])) {
    touch($_GET['started']);
}
usleep((int)($_GET['ms'] ?? 3000) * 1000);
echo "slept";
