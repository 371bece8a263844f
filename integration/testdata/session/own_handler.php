<?php
// A legacy application with a session handler of its own (a database
// handler, say; here files in the temp directory), installed before
// session_start() as such code does. Counts visits in its own session.
class OwnFileHandler implements SessionHandlerInterface
{
    private function path(string $id): string
    {
        return sys_get_temp_dir() . '/own_handler_sess_' . preg_replace('/[^A-Za-z0-9,-]/', '', $id);
    }
    public function open(string $path, string $name): bool { return true; }
    public function close(): bool { return true; }
    public function read(string $id): string|false { return @file_get_contents($this->path($id)) ?: ''; }
    public function write(string $id, string $data): bool { return file_put_contents($this->path($id), $data) !== false; }
    public function destroy(string $id): bool { @unlink($this->path($id)); return true; }
    public function gc(int $max): int|false { return 0; }
}
session_set_save_handler(new OwnFileHandler(), true);
session_start();
$_SESSION['own'] = ($_SESSION['own'] ?? 0) + 1;
echo $_SESSION['own'];
