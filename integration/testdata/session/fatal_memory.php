<?php
// fatal_memory.php?dir=D: a page that changes its session, then dies of
// memory_limit (with ?late=1 after its output, and so its headers, left).
// With ?dir=, the session is PHP's own files handler's (in D, under a
// fixed ID), not the gateway's: what PHP itself saves on that fatal error.
// ?read=1 prints the count and changes nothing.
if (isset($_GET['dir'])) {
    ini_set('session.save_handler', 'files');
    ini_set('session.use_strict_mode', '0');
    session_save_path($_GET['dir']);
    session_id('fatalmemory' . (isset($_GET['late']) ? 'late' : ''));
}
session_start();
if (isset($_GET['read'])) {
    echo $_SESSION['fatal_memory'] ?? 0;
    return;
}
$_SESSION['fatal_memory'] = ($_SESSION['fatal_memory'] ?? 0) + 1;
echo $_SESSION['fatal_memory'], "\n";
if (isset($_GET['late'])) {
    echo str_repeat('x', 200000);
    flush();
}
ini_set('memory_limit', '32M');
$waste = str_repeat('x', 64 << 20);
