<?php
// A 32 MiB download. With ?session=1 the script keeps its session open to
// the end (no session_write_close), as most PHP apps do; without, it never
// starts one (the gateway still locked the session it was sent).
if (!empty($_GET['session'])) {
    session_start();
    $_SESSION['downloads'] = ($_SESSION['downloads'] ?? 0) + 1;
}
header('Content-Type: application/octet-stream');
$chunk = str_repeat(hash('sha256', 'sessiongate'), 1024); // 64 KiB
for ($i = 0; $i < 512; $i++) {
    echo $chunk;
}
if (!empty($_GET['die'])) {
    flush();
    posix_kill(getmypid(), 9); // killed before the session is saved
}
