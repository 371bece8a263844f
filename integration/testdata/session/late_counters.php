<?php
// late_counters.php: counters a page increments where PHP's files handler
// still saves them under its lock, after the prepend's last shutdown
// function: an object destructor (d), a shutdown function registered while
// the request shuts down (s) and an output buffer's callback (o).
class LateCounter
{
    public function __destruct()
    {
        $_SESSION['d'] = ($_SESSION['d'] ?? 0) + 1;
    }
}
session_start();
$counter = new LateCounter();
register_shutdown_function(function () {
    register_shutdown_function(function () {
        $_SESSION['s'] = ($_SESSION['s'] ?? 0) + 1;
    });
});
ob_start(function (string $out, int $phase): string {
    if ($phase & PHP_OUTPUT_HANDLER_FINAL) {
        $_SESSION['o'] = ($_SESSION['o'] ?? 0) + 1;
    }
    return $out;
});
header('Content-Type: text/plain');
echo 'ok';
