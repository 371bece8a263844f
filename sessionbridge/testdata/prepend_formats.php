<?php
/*
 * The prepend's conversion between the gateway's session format
 * (php_serialize) and PHP's own "php" and "php_binary" formats, checked
 * against PHP's own encoders and decoders. Run by prependformat_test.go:
 * php -n prepend_formats.php <path of prepend.php>. Prints one line per
 * failure, then "ok <number of checks>".
 */
error_reporting(E_ALL & ~E_DEPRECATED);
set_error_handler(static function (int $no, string $msg): bool {
    // PHP's own encoders warn of the integer keys they skip.
    return str_starts_with($msg, 'session_encode(): Skipping numeric key');
});
ob_start(); // the CLI would send its headers at the first output
require $argv[1];

$GLOBALS['wakes'] = 0;
$GLOBALS['sleeps'] = 0;

class Wakes
{
    public $v;
    public $link;
    function __construct($v) { $this->v = $v; }
    function __sleep() { $GLOBALS['sleeps']++; return ['v']; }
    function __wakeup() { $GLOBALS['wakes']++; $this->link = 'connected'; }
}

class Unserializes
{
    public $v;
    function __construct($v) { $this->v = $v; }
    function __serialize(): array { $GLOBALS['sleeps']++; return ['v' => $this->v]; }
    function __unserialize(array $d): void { $GLOBALS['wakes']++; $this->v = $d['v']; }
}

/* A Serializable only (deprecated since PHP 8.1, still in old code): its
 * payload is serialize() text numbered with the session's values. */
class OldSerializable implements Serializable
{
    public $items;
    function __construct($items) { $this->items = $items; }
    function serialize(): string { return serialize($this->items); }
    function unserialize(string $d): void { $GLOBALS['wakes']++; $this->items = unserialize($d); }
}

enum Suit: string { case Hearts = 'H'; }

/** @return array<string, array{0: array, 1: bool}> sessions, and whether the text conversion must build nothing */
function sessions(): array
{
    $out = [];
    $out['scalars'] = [['a' => 1, 'b' => 'x|y', 'c' => 1.5, 'd' => null, 'e' => true, 'f' => "\0\xff"], true];
    $o = new Wakes(1);
    $out['object under two keys'] = [['w' => $o, 'n' => 1, 'again' => $o], true];
    $x = ['shared'];
    $s = ['r1' => &$x, 'mid' => [1, 2, 3], 'r2' => &$x];
    $out['reference across keys'] = [$s, true];
    unset($x, $s);
    $o = new Unserializes(['deep' => [1, 2]]);
    $y = 5;
    $out['references inside values'] = [[
        'a' => [1, $o, ['p' => &$y]],
        'b' => ['x' => ['y' => $o, 'z' => &$y]],
        'c' => [new Wakes(2), $o],
    ], true];
    unset($y);
    $rec = ['x' => 1];
    $rec['self'] = &$rec;
    $out['recursive array'] = [['first' => new Wakes(3), 'rec' => $rec], true];
    unset($rec);
    $o = new Wakes(4);
    $out['hidden key before references'] = [[7 => ['one', 'two'], 'a' => $o, 'a|b' => 'pipe', 'b' => $o, str_repeat('k', 128) => [1], 'c' => $o], true];
    $o = new Wakes(5);
    $out['hidden key referenced'] = [[3 => $o, 'a' => $o], false];
    $out['hidden key referencing'] = [['a' => $o, 3 => $o], false];
    $inner = new Wakes(6);
    $out['serializable with references'] = [['w' => $inner, 'old' => new OldSerializable([$inner, $inner])], false];
    $out['serializable without references'] = [['w' => new Wakes(7), 'old' => new OldSerializable([1, 'two'])], true];
    $o = new Wakes(9);
    $out['serializable between hidden key and references'] = [[5 => 'hidden', 'old' => new OldSerializable([1, [2, 'x']]), 'w' => $o, 'w2' => $o], true];
    $out['internal classes'] = [['ao' => new ArrayObject([1, 2]), 'dt' => new DateTime('2020-01-02 03:04:05', new DateTimeZone('UTC')), 'st' => new SplObjectStorage(), 'e' => Suit::Hearts, 'e2' => Suit::Hearts], true];
    $out['numeric keys'] = [['10' => 'ten', 'x' => [5 => 'a', '-1' => 'b']], true];
    $out['empty'] = [[], true];
    return $out;
}

$handlerClass = new ReflectionClass(SessiongateSessionHandler::class);
$call = static function (object $h, string $method, ...$args) use ($handlerClass) {
    return $handlerClass->getMethod($method)->invoke($h, ...$args);
};
// A handler as read() leaves it: bound to $_SESSION, as PHP's session is.
$newHandler = static function (): SessiongateSessionHandler {
    $h = new SessiongateSessionHandler([]);
    Closure::bind(function (): void {
        $this->vars = &$_SESSION;
    }, $h, SessiongateSessionHandler::class)();
    return $h;
};
$failures = 0;
$checks = 0;
$check = static function (bool $ok, string $what) use (&$failures, &$checks): void {
    $checks++;
    if (!$ok) {
        $failures++;
        echo "FAIL $what\n";
    }
};

foreach (['php', 'php_binary'] as $format) {
    ini_set('session.serialize_handler', $format);
    session_start(); // the prepend's handler, outside the gateway: an empty session
    foreach (sessions() as $name => [$session, $textOnly]) {
        $raw = serialize($session); // what the gateway holds: php_serialize
        // PHP's own encoder, of the keys the format can name.
        $_SESSION = unserialize($raw);
        foreach (array_keys($_SESSION) as $key) {
            if (is_int($key) || ($format === 'php' ? str_contains($key, '|') : strlen($key) > 127)) {
                unset($_SESSION[$key]);
            }
        }
        $want = (string)session_encode();
        $handler = $newHandler();
        $GLOBALS['wakes'] = $GLOBALS['sleeps'] = 0;
        $got = $call($handler, 'forScript', $raw);
        $check($got === $want, "$format $name: forScript gave\n  " . var_export($got, true) . "\nPHP's encoder\n  " . var_export($want, true));
        if ($textOnly) {
            $check($GLOBALS['wakes'] === 0 && $GLOBALS['sleeps'] === 0, "$format $name: reading woke $GLOBALS[wakes] and put $GLOBALS[sleeps] objects to sleep");
        }
        // PHP's decoder reads it as the session.
        $_SESSION = [];
        if (is_string($got) && $got !== '') {
            session_decode($got);
        }
        $decoded = serialize($_SESSION);
        // And what PHP's encoder makes of it after goes back to the same
        // php_serialize text, the keys the script could not see included.
        $encoded = session_encode();
        $GLOBALS['wakes'] = $GLOBALS['sleeps'] = 0;
        $back = $call($handler, 'fromScript', is_string($encoded) ? $encoded : '', $format);
        // Built (a back-reference between a hidden key and a shown one):
        // the values come back equal, but the hidden key's are no longer
        // the same object or reference as the shown key's.
        $same = $textOnly ? $back === $raw : unserialize($back) == unserialize($raw);
        $check($same, "$format $name: fromScript gave\n  $back\nwant\n  $raw");
        if ($textOnly) {
            $check($GLOBALS['wakes'] === 0 && $GLOBALS['sleeps'] === 0, "$format $name: writing woke $GLOBALS[wakes] and put $GLOBALS[sleeps] objects to sleep");
        }
        unset($decoded);
    }
    // A script that changed the session: a new key with a reference to
    // an object under a key before a hidden one.
    $o = new Wakes(8);
    $raw = serialize(['a' => $o, 9 => 'hidden', 'b' => 1]);
    $handler = $newHandler();
    $script = $call($handler, 'forScript', $raw);
    $_SESSION = [];
    session_decode($script);
    $_SESSION['c'] = $_SESSION['a'];
    $_SESSION['d'] = &$_SESSION['b'];
    $back = $call($handler, 'fromScript', session_encode(), $format);
    $want = ['a' => $_SESSION['a'], 9 => 'hidden', 'b' => 1, 'c' => $_SESSION['a']];
    $want['d'] = &$want['b'];
    $check($back === serialize($want), "$format changed session: fromScript gave\n  $back\nwant\n  " . serialize($want));
    unset($want);
    // A key with '|' in the "php" format: PHP's encoder gives up on the
    // whole session, and an empty one is stored, as PHP's own handler does.
    if ($format === 'php') {
        $handler = $newHandler();
        $_SESSION = ['x' => 1, 'a|b' => 2];
        $check(session_encode() === false, 'php: PHP encodes a session with a key "a|b"');
        $back = $call($handler, 'fromScript', '', $format);
        $check($back === 'a:0:{}', "php, key \"a|b\": fromScript gave $back, want a:0:{}");
    }
    session_abort();
}
echo "ok $checks\n";
exit($failures === 0 ? 0 : 1);
