<?php
// The session handler of the own_handler*.php fixtures: an application's
// own (a database handler, say; here files in the temp directory, one
// prefix per fixture).
class OwnFileHandler implements SessionHandlerInterface
{
    public function __construct(private string $prefix) {}
    private function path(string $id): string
    {
        return sys_get_temp_dir() . '/' . $this->prefix . '_' . preg_replace('/[^A-Za-z0-9,-]/', '', $id);
    }
    public function open(string $path, string $name): bool { return true; }
    public function close(): bool { return true; }
    public function read(string $id): string|false { return @file_get_contents($this->path($id)) ?: ''; }
    public function write(string $id, string $data): bool { return file_put_contents($this->path($id), $data) !== false; }
    public function destroy(string $id): bool { @unlink($this->path($id)); return true; }
    public function gc(int $max): int|false { return 0; }
}
