<?php
// An application with a session handler of its own installed with the six
// callbacks of session_set_save_handler() (Roundcube's database handler,
// say; here files in the temp directory), which leaves out create_sid,
// validate_sid and update_timestamp. Like Roundcube's, its write callback
// also keeps the session alive: it counts the writes of each session, which
// PHP makes on every request (with lazy_write, an unchanged session goes
// through update_timestamp, which falls back to write).
// Its cookie has a name of its own, as Roundcube's (roundcube_sessid).
// ?op=inc counts visits, ?op=read only reads, ?op=regen regenerates the ID;
// ?default_name=1 keeps PHP's default cookie name (PHPSESSID).
$file = static fn(string $id, string $kind): string => sys_get_temp_dir() . '/own_proc_' . $kind . '_' . preg_replace('/[^A-Za-z0-9,-]/', '', $id);
session_set_save_handler(
    static fn(string $path, string $name): bool => true,
    static fn(): bool => true,
    static fn(string $id): string => (string)@file_get_contents($file($id, 'data')),
    static function (string $id, string $data) use ($file): bool {
        file_put_contents($file($id, 'writes'), (int)@file_get_contents($file($id, 'writes')) + 1);
        return file_put_contents($file($id, 'data'), $data) !== false;
    },
    static function (string $id) use ($file): bool {
        @unlink($file($id, 'data'));
        return true;
    },
    static fn(int $max): int => 0
);
if (!isset($_GET['default_name'])) {
    session_name('own_proc_sid');
}
session_start();
$op = $_GET['op'] ?? 'inc';
if ($op === 'inc') {
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
} elseif ($op === 'regen') {
    $_SESSION['regen'] = session_regenerate_id(false) ? 'ok' : 'failed';
}
$id = session_id();
session_write_close();
header('Content-Type: text/plain');
echo 'n=', $_SESSION['n'] ?? 0, ' writes=', (int)@file_get_contents($file($id, 'writes')), ' regen=', $_SESSION['regen'] ?? '-';
