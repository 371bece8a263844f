<?php
// Differential-test helper for sessionbridge/phpserial (see
// differential_test.go). One process serves a whole run:
//
//   php corpus.php gen    prints "<name>\t<kind>\t<base64>" lines, kind is
//                         "ser" (serialize($v), the php_serialize session
//                         format) or "handler" (session_encode() with the
//                         `php` handler), for every value built below.
//   php corpus.php check  reads "<id>\t<mode>\t<base64>" lines and answers
//                         "<id>\t<base64 result>" or "<id>\tERR\t<message>":
//                         mode "ser": serialize(unserialize(x));
//                         "handler": session_decode(x) then session_encode();
//                         "export": var_export(unserialize(x), true);
//                         "same" (a 4th field: base64 of a PHP expression):
//                         "1" if unserialize(x) === the expression, else
//                         "0 " and var_export(unserialize(x)).
// Values are built BY PHP so the corpus has PHP's exact output forms.

error_reporting(E_ALL & ~E_DEPRECATED);
ini_set('serialize_precision', '-1');
ini_set('session.serialize_handler', 'php');
ini_set('session.use_cookies', '0');
ini_set('session.use_only_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.save_path', sys_get_temp_dir());
ini_set('session.gc_probability', '0');

class Plain { public $a = 1; public $b = [1, 2]; }
class Props {
    public $pub = 'p';
    protected $prot = 2;
    private $priv = [3.5, null];
    public function set($v) { $this->priv = $v; return $this; }
}
class Child extends Props { private $priv = 'child'; public $extra; }
class Legacy implements Serializable {
    public $data;
    public function __construct($d = null) { $this->data = $d; }
    public function serialize() { return json_encode($this->data); }
    public function unserialize($s) { $this->data = json_decode($s, true); }
}
class Modern {
    public $x;
    public function __construct($x = null) { $this->x = $x; }
    public function __serialize(): array { return ['x' => $this->x, 'k' => [1, 2]]; }
    public function __unserialize(array $d): void { $this->x = $d['x']; }
}
enum Suit { case Hearts; case Spades; }
enum Status: string { case Active = 'active'; case Off = 'off'; }

function values(): array {
    $v = [];
    // Scalars and simple arrays.
    $v['scalars'] = function (&$s) { $s = ['n' => null, 't' => true, 'f' => false, 'i' => 42, 'neg' => -7, 'zero' => 0, 's' => 'hello', 'e' => '']; };
    $v['intlimits'] = function (&$s) { $s = ['max' => PHP_INT_MAX, 'min' => PHP_INT_MIN, PHP_INT_MAX => 'k', PHP_INT_MIN => 'm']; };
    $v['floats'] = function (&$s) { $s = ['a' => 0.1, 'b' => 1e25, 'c' => -0.0, 'd' => INF, 'e' => -INF, 'f' => NAN, 'g' => 1.0, 'h' => -1.5, 'i' => 1e-7, 'j' => 0.0001, 'k' => 1e15, 'l' => 1e16, 'm' => 1e17, 'n' => 5e-324, 'o' => PHP_FLOAT_MAX, 'p' => 0.30000000000000004, 'q' => 123456789012345678.0, 'r' => 0.0, 's' => 2.5e-5, 't' => -1e100]; };
    $v['list'] = function (&$s) { $s = ['l' => [1, 2, 3], 'empty' => [], 'nested' => [[], [[]], [1, [2, [3]]]]]; };
    $v['intkeys'] = function (&$s) { $s = [5 => 'five', 3 => 'three', -1 => 'neg', 'x' => [1 => 'a', 0 => 'b'], 'y' => [0 => 'a', 2 => 'c'], 'z' => ['1' => 'one', '01' => 'zero-one', '-0' => 'mz', '+1' => 'p']]; };
    $v['toplist'] = function (&$s) { $s = ['a', 'b', 'c']; };
    $v['empty'] = function (&$s) { $s = []; };
    $v['unicode'] = function (&$s) { $s = ['é' => 'café', '日本' => '語', 'emoji' => "\u{1F600}", 'ctrl' => "a\tb\nc\r\x01\x1f\x7f\"'\\/<>&", "k\"ey" => 'q', 'u2028' => "\u{2028}\u{2029}"]; };
    $v['binary'] = function (&$s) { $s = ['nul' => "a\0b", 'bin' => "\xff\xfe\x00\x80", 'half' => "\xe6\x97", "\xff" => 'badkey', 'list' => ["\xc0\xaf", 'ok']]; };
    $v['binkey_nested'] = function (&$s) { $s = ['outer' => ["\x80" => 1, 'ok' => 2], 'fine' => 3]; };
    $v['phpkey'] = function (&$s) { $s = ['x' => ['__php__' => 'looks like a tag'], 'y' => ['__php__b64' => 1], 'z' => ['__php__' => 1, 'other' => 2]]; };
    $v['phpkey_top'] = function (&$s) { $s = ['__php__' => 'alone']; };
    $v['sesskey_top'] = function (&$s) { $s = ['__php_session__' => 'x', 'other' => 1]; };
    $v['sesskey_nested'] = function (&$s) { $s = ['a' => ['__php_session__' => 'x']]; };
    // Objects.
    $v['objects'] = function (&$s) { $s = ['plain' => new Plain, 'std' => (object)['a' => 1, 'b' => [2]], 'props' => (new Props)->set(['deep' => new Plain]), 'child' => new Child, 'empty' => new stdClass]; };
    $v['serializable'] = function (&$s) { $s = ['legacy' => new Legacy(['a' => 1, 'b' => "x\0y"]), 'modern' => new Modern([1, 2])]; };
    $v['enums'] = function (&$s) { $s = ['suit' => Suit::Hearts, 'list' => [Suit::Spades, Status::Active]]; };
    // References.
    $v['ref_within_key'] = function (&$s) { $a = [1, 2]; $a[] = &$a[0]; $s = ['k' => $a, 'after' => 'x']; };
    $v['ref_nested_deep'] = function (&$s) { $x = ['p' => ['q' => 'v']]; $x['r'] = &$x['p']['q']; $s = ['before' => [1, 2, 3], 'data' => ['x' => $x, 'y' => 2], 'after' => 'z']; };
    $v['obj_twice_within'] = function (&$s) { $o = new Plain; $s = ['pre' => 1, 'k' => ['a' => $o, 'b' => $o, 'c' => 'x'], 'post' => [1]]; };
    $v['obj_self'] = function (&$s) { $o = new stdClass; $o->self = $o; $s = ['o' => $o, 'n' => 1]; };
    $v['enum_twice'] = function (&$s) { $s = ['x' => 0, 'k' => [Suit::Hearts, Suit::Hearts]]; };
    $v['serialize_data_refs'] = function (&$s) { $o = new Plain; $s = ['pre' => [1, 2], 'k' => [new Modern($o), $o, new Legacy([1]), Suit::Spades, Suit::Spades]]; };
    $v['enum_across_keys'] = function (&$s) { $s = ['role' => Status::Active, 'roles' => [Status::Active, Suit::Hearts], 'o' => (object)['s' => Suit::Hearts], 'last' => Status::Active]; };
    $v['enum_ref_var'] = function (&$s) { $e = Suit::Spades; $s = ['a' => &$e, 'b' => Suit::Spades, 'c' => &$e]; };
    $v['ref_across_keys'] = function (&$s) { $s = ['a' => 1, 'b' => 'two']; $s['c'] = &$s['b']; };
    $v['obj_across_keys'] = function (&$s) { $o = new Plain; $s = ['user' => $o, 'other' => 1, 'again' => $o]; };
    $v['ref_to_array'] = function (&$s) { $s = ['lst' => [1, 2]]; $s['lst'][] = &$s['lst']; };
    $v['two_refs'] = function (&$s) { $a = ['x', 'y']; $a[] = &$a[1]; $b = [new stdClass]; $b[] = $b[0]; $s = ['a' => $a, 'm' => 'mid', 'b' => $b]; };
    $v['ref_after_binkey'] = function (&$s) { $a = ["\xff" => 'v']; $a['r'] = &$a["\xff"]; $s = ['q' => 1, 'a' => $a]; };
    // Something realistic.
    $v['realistic'] = function (&$s) {
        $s = ['user_id' => 1234, 'username' => 'jdoe', 'roles' => ['admin', 'editor'], 'csrf' => bin2hex(str_repeat("\x5a", 16)),
              'cart' => [['sku' => 'A-1', 'qty' => 2, 'price' => 19.99], ['sku' => 'B-2', 'qty' => 1, 'price' => 5.0]],
              'flash' => [], 'last_seen' => 1700000000, 'prefs' => ['lang' => 'fr', 'tz' => 'Europe/Paris', 'dark' => true],
              'obj' => new Plain];
    };
    $v['floats_random'] = function (&$s) { mt_srand(777); for ($i = 0; $i < 600; $i++) { $s["f$i"] = randFloat(); } };
    // Random floats, strings and nesting, seeded so every run is the same.
    mt_srand(12345);
    for ($r = 0; $r < 40; $r++) {
        $v["random$r"] = function (&$s) use ($r) {
            mt_srand(1000 + $r);
            $s = [];
            for ($i = mt_rand(0, 8); $i > 0; $i--) { $s[randString() . "k$i"] = randValue(3); }
        };
    }
    return $v;
}

function randFloat(): float {
    $b = '';
    for ($i = 0; $i < 8; $i++) { $b .= chr(mt_rand(0, 255)); }
    $f = unpack('E', $b)[1];
    switch (mt_rand(0, 3)) {
        case 0: return $f;
        case 1: return mt_rand() / mt_getrandmax() * 10 ** mt_rand(-30, 30);
        case 2: return (float)mt_rand(-1000000, 1000000);
        default: return round(mt_rand() / mt_getrandmax() * 1000, mt_rand(0, 4));
    }
}

function utf8chr(int $cp): string {
    if ($cp < 0x800) { return chr(0xc0 | $cp >> 6) . chr(0x80 | $cp & 0x3f); }
    return chr(0xe0 | $cp >> 12) . chr(0x80 | $cp >> 6 & 0x3f) . chr(0x80 | $cp & 0x3f);
}

function randString(): string {
    $n = mt_rand(0, 12);
    $s = '';
    $mode = mt_rand(0, 2);
    for ($i = 0; $i < $n; $i++) {
        $s .= match ($mode) { 0 => chr(mt_rand(32, 126)), 1 => utf8chr(mt_rand(0xa0, 0x2fff)), default => chr(mt_rand(0, 255)) };
    }
    return $s;
}

function randValue(int $depth) {
    switch (mt_rand(0, $depth > 0 ? 8 : 5)) {
        case 0: return null;
        case 1: return (bool)mt_rand(0, 1);
        case 2: return mt_rand(-2147483648, 2147483647) * mt_rand(1, 4294967296);
        case 3: return randFloat();
        case 4: case 5: return randString();
        default: return randArray($depth - 1);
    }
}

function randArray(int $depth): array {
    $a = [];
    $n = mt_rand(0, 6);
    $listy = mt_rand(0, 1);
    for ($i = 0; $i < $n; $i++) {
        if ($listy) { $a[] = randValue($depth); }
        else { $a[mt_rand(0, 1) ? randString() : mt_rand(-5, 20)] = randValue($depth); }
    }
    return $a;
}

$mode = $argv[1] ?? '';
session_start();
if ($mode === 'gen') {
    foreach (values() as $name => $build) {
        $s = [];
        $build($s);
        echo $name, "\tser\t", base64_encode(serialize($s)), "\n";
        $_SESSION = [];
        $build($_SESSION);
        echo $name, "\thandler\t", base64_encode(@session_encode()), "\n";
    }
    $_SESSION = [];
    exit(0);
}
if ($mode === 'check') {
    while (($line = fgets(STDIN)) !== false) {
        $parts = explode("\t", rtrim($line, "\n"));
        if (count($parts) < 3) { continue; }
        [$id, $how, $b64] = $parts;
        $in = base64_decode($b64, true);
        $err = null;
        set_error_handler(function ($no, $msg) use (&$err) { $err = $msg; return true; });
        $out = false;
        if ($how === 'handler') {
            $_SESSION = [];
            if (session_decode($in)) {
                // session_encode() returns false for an empty session.
                $out = $_SESSION === [] ? '' : session_encode();
            }
            if (session_status() !== PHP_SESSION_ACTIVE) { session_start(); }
        } else {
            $v = unserialize($in);
            if ($v !== false || $in === 'b:0;') {
                if ($how === 'same') {
                    $want = eval('return ' . base64_decode($parts[3]) . ';');
                    $out = $v === $want ? '1' : '0 ' . var_export($v, true);
                } else {
                    $out = $how === 'export' ? var_export($v, true) : serialize($v);
                }
            }
        }
        restore_error_handler();
        if ($out === false) {
            echo $id, "\tERR\t", str_replace(["\t", "\n"], ' ', (string)$err), "\n";
        } else {
            echo $id, "\t", base64_encode($out), "\n";
        }
    }
    $_SESSION = [];
    exit(0);
}
fwrite(STDERR, "usage: php corpus.php gen|check\n");
exit(2);
