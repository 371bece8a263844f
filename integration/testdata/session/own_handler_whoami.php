<?php
// An application with a session handler of its own (MediaWiki's, say) that
// asks for the Django user while its own session is active, as a single
// sign-on hook does.
class OwnWhoamiHandler implements SessionHandlerInterface
{
    public function open(string $path, string $name): bool { return true; }
    public function close(): bool { return true; }
    public function read(string $id): string|false { return ''; }
    public function write(string $id, string $data): bool { return true; }
    public function destroy(string $id): bool { return true; }
    public function gc(int $max): int|false { return 0; }
}
session_set_save_handler(new OwnWhoamiHandler(), true);
session_start();
$_SESSION['_auth_user_id'] = 'app-own';
header('Content-Type: text/plain');
$uid = sessiongate_user_id();
echo $uid === null ? "anonymous" : "user:" . $uid;
