<?php
// A legacy application with a session handler of its own, installed without
// PHP's shutdown hook (register_shutdown false, as the six-callback form of
// session_set_save_handler() also does), and a cart object that saves
// itself into $_SESSION in its destructor. PHP writes such a session after
// the destructors, so the change is kept.
class OwnDestructHandler implements SessionHandlerInterface
{
    private function path(string $id): string
    {
        return sys_get_temp_dir() . '/own_destruct_sess_' . preg_replace('/[^A-Za-z0-9,-]/', '', $id);
    }
    public function open(string $path, string $name): bool { return true; }
    public function close(): bool { return true; }
    public function read(string $id): string|false { return @file_get_contents($this->path($id)) ?: ''; }
    public function write(string $id, string $data): bool { return file_put_contents($this->path($id), $data) !== false; }
    public function destroy(string $id): bool { @unlink($this->path($id)); return true; }
    public function gc(int $max): int|false { return 0; }
}
class OwnCart
{
    public function __destruct()
    {
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
    }
}
session_set_save_handler(new OwnDestructHandler(), false);
session_start();
$cart = new OwnCart();
echo $_SESSION['n'] ?? 0;
