<?php
// contract_rt.php: the PHP side of the randomized data contract round trip
// (integration/contract_roundtrip_test.go).
//   ?op=gen&seed=S&n=N    stores N pseudo-random PHP values (mt_srand(S))
//                         under r0..r<N-1>
//   ?op=check&seed=S&n=N  answers "same" when r<i> (and w<i>[0], which
//                         Django's contract-wrap view stores) still hold
//                         exactly those values (serialize() equal), else
//                         one line per difference
//   ?op=copy              for every d<i> (Django's values): p<i> = [d<i>],
//                         so PHP re-encodes them, and p_sha[<i>] the sha1
//                         of serialize(p<i>); with &poke=1 then sets
//                         d<i>['__poked'] = 1 in each array d<i>; with
//                         &regen=1 then session_regenerate_id(true)
//   ?op=verify            answers "same" when every p<i> still hashes to
//                         p_sha[<i>]
//   ?op=incr&k=name       adds 1 to $_SESSION[name]['n'] (a PHP page that
//                         counts something inside a value Django wrote)
class SgContractFoo
{
    public $pub = 1;
    protected $prot = [1];
    private $priv = "p\0q";
    public function __construct($v = null) { $this->pub = $v; }
}
enum SgContractSuit: string { case H = 'h'; case S = 's'; }
enum SgContractPure { case A; case B; }

function sgc_r(int $n): int { return mt_rand(0, $n - 1); }
function sgc_pick(array $a) { return $a[sgc_r(count($a))]; }

function sgc_int(): int
{
    switch (sgc_r(5)) {
        case 0: return sgc_pick([0, 1, -1, PHP_INT_MAX, PHP_INT_MIN, PHP_INT_MAX - 1, PHP_INT_MIN + 1]);
        case 1: return sgc_pick([9007199254740991, 9007199254740992, 9007199254740993, -9007199254740993]) + sgc_r(3) - 1;
        case 2: return mt_rand(PHP_INT_MIN, PHP_INT_MAX);
        default: return mt_rand(-1000, 1000);
    }
}

function sgc_float(): float
{
    switch (sgc_r(6)) {
        case 0: return sgc_pick([-0.0, 0.0, 1.0, -1.0, 0.1, 1e300, -1e300, 5e-324, -5e-324, 2.2250738585072014E-308,
            2.225073858507201E-308, 1.7976931348623157E308, 1e15, 1e16, 1e17, 1e-4, 1e-5, 0.30000000000000004,
            9007199254740993.0, 123456789012345678.0, 0.1 + 0.7]);
        case 1: return sgc_pick([INF, -INF, NAN]);
        case 2: return unpack('E', pack('J', mt_rand(PHP_INT_MIN, PHP_INT_MAX)))[1]; // any bit pattern
        case 3: return mt_rand() / mt_getrandmax() * 10 ** mt_rand(-30, 30);
        default: return mt_rand(-100000, 100000) / 7;
    }
}

function sgc_char(): string
{
    switch (sgc_r(6)) {
        case 0: return sgc_pick(["\u{2028}", "\u{2029}", "\u{FEFF}", "\u{1F600}", "\u{10FFFF}", "\u{FFFD}", "\u{FFFF}",
            "\0", "\x7f", '"', '\\', '/', "\n", "\t", "\x01", "\u{85}", '</script>', "\u{e9}", "e\u{301}"]);
        case 1: return mb_chr(mt_rand(0x80, 0x7FF), 'UTF-8');
        case 2: $c = mt_rand(0x800, 0xFFFF); return mb_chr($c >= 0xD800 && $c <= 0xDFFF ? 0x41 : $c, 'UTF-8');
        case 3: return mb_chr(mt_rand(0x10000, 0x10FFFF), 'UTF-8');
        default: return chr(mt_rand(0, 127));
    }
}

function sgc_string(): string
{
    switch (sgc_r(8)) {
        case 0: return sgc_pick(['', '0', '1', '01', '-0', '1.0', '1e3', ' 1', '9223372036854775808', '__php__', 'null']);
        case 1: // random bytes, mostly not UTF-8
            $s = '';
            for ($i = sgc_r(12); $i > 0; $i--) { $s .= chr(mt_rand(0, 255)); }
            return $s;
        case 2: return sgc_pick(["\xed\xa0\x80", "\xed\xbf\xbf", "\xc0\x80", "\xf4\x90\x80\x80", "\xff", "a\xe9b", "\xef\xbf\xbe"]);
        case 3: return sgc_r(20) ? sgc_char() : str_repeat(sgc_char(), mt_rand(1000, 9000));
        default:
            $s = '';
            for ($i = sgc_r(10); $i > 0; $i--) { $s .= sgc_char(); }
            return $s;
    }
}

function sgc_key(): int|string
{
    switch (sgc_r(6)) {
        case 0: return sgc_pick(['1', '01', '-0', '0', '', '9223372036854775807', '9223372036854775808',
            '-9223372036854775808', '-9223372036854775809', '__php__', '__php__b64', '__php_session__', ' ', '1.5', '+1', '-1']);
        case 1: return sgc_int();
        case 2: return sgc_string();
        default: return 'k' . sgc_r(5);
    }
}

function sgc_object(int $d)
{
    switch (sgc_r(8)) {
        case 0: $o = new stdClass; $o->a = sgc_value($d + 1); $o->{'0'} = 'zero'; return $o;
        case 1: return new SgContractFoo(sgc_value($d + 1));
        case 2: return new ArrayObject([1, 'a' => sgc_value($d + 1)]);
        case 3: return new DateTime('@' . mt_rand(0, 2000000000));
        case 4: return sgc_pick([SgContractSuit::H, SgContractSuit::S, SgContractPure::A]);
        case 5: // a reference inside
            // Not to an enum case: serialize() writes a second reference
            // set holding the same case (Django's copy of the value) as R:
            // to the first, which links them for PHP from then on.
            $v = sgc_value($d + 1);
            $a = [$v instanceof UnitEnum ? 'case' : $v];
            $a[1] = &$a[0];
            return $a;
        case 6: $o = new stdClass; return [$o, 'x', $o]; // one object twice
        default: $a = ['self' => 1]; $a['again'] = [sgc_value($d + 1)]; $a['ref'] = &$a['again']; return $a;
    }
}

function sgc_value(int $d = 0)
{
    switch (sgc_r($d > 5 ? 5 : 9)) {
        case 0: return sgc_pick([null, true, false]);
        case 1: return sgc_int();
        case 2: return sgc_float();
        case 3: case 4: return sgc_string();
        case 5: case 6:
            $a = [];
            $n = sgc_r(6);
            switch (sgc_r(4)) {
                case 0: for ($i = 0; $i < $n; $i++) { $a[] = sgc_value($d + 1); } break; // a list
                case 1: // holes, or not starting at 0
                    $s = mt_rand(-2, 3);
                    for ($i = 0; $i < $n; $i++) { $a[$s + $i * mt_rand(1, 2)] = sgc_value($d + 1); }
                    break;
                default: for ($i = 0; $i < $n; $i++) { $a[sgc_key()] = sgc_value($d + 1); }
            }
            return $a;
        case 7: // deep: the gateway gives PHP 64 levels, Django's wrap adds one
            $v = sgc_string();
            for ($i = mt_rand(1, 50); $i > 0; $i--) { $v = sgc_r(2) ? [$v] : ['k' => $v]; }
            return $v;
        default: return sgc_object($d);
    }
}

/** serialize() of $v alone: references inside it numbered from it. */
function sgc_text($v): string
{
    return serialize([$v]);
}

function sgc_short(string $s): string
{
    return strlen($s) > 300 ? substr($s, 0, 300) . '...(' . strlen($s) . ' bytes)' : $s;
}

if (($_GET['handler'] ?? '') !== '') {
    ini_set('session.serialize_handler', $_GET['handler']);
}
session_start();
header('Content-Type: text/plain');
$op = $_GET['op'] ?? '';
$n = (int)($_GET['n'] ?? 0);
mt_srand((int)($_GET['seed'] ?? 0));
if ($op === 'gen') {
    for ($i = 0; $i < $n; $i++) {
        $_SESSION["r$i"] = sgc_value();
    }
    echo 'ok';
} elseif ($op === 'check') {
    $diff = [];
    for ($i = 0; $i < $n; $i++) {
        $want = sgc_text(sgc_value());
        $got = ["r$i" => $_SESSION["r$i"] ?? null];
        if (array_key_exists("w$i", $_SESSION)) {
            $got["w{$i}[0]"] = $_SESSION["w$i"][0] ?? null;
        }
        foreach ($got as $k => $v) {
            if (sgc_text($v) !== $want) {
                $diff[] = "$k: " . sgc_short(sgc_text($v)) . "\n  want " . sgc_short($want);
            }
        }
    }
    echo $diff === [] ? 'same' : implode("\n", $diff);
} elseif ($op === 'copy') {
    $sha = [];
    foreach ($_SESSION as $k => $v) {
        if (is_string($k) && preg_match('/^d(\d+)$/', $k, $m)) {
            $_SESSION["p$m[1]"] = [$v];
            $sha[$m[1]] = sha1(sgc_text($_SESSION["p$m[1]"]));
        }
    }
    $_SESSION['p_sha'] = $sha;
    if (($_GET['poke'] ?? '') === '1') {
        // A change inside each of Django's arrays: the rest of it must
        // come back to Django as Django wrote it.
        foreach ($_SESSION as $k => $v) {
            if (is_string($k) && preg_match('/^d\d+$/', $k) && is_array($v)) {
                $_SESSION[$k]['__poked'] = 1;
            }
        }
    }
    if (($_GET['regen'] ?? '') === '1') {
        session_regenerate_id(true); // the data moves to a new ID
    }
    echo 'ok ' . count($sha);
} elseif ($op === 'verify') {
    $diff = [];
    foreach ($_SESSION['p_sha'] ?? [] as $i => $h) {
        if (sha1(sgc_text($_SESSION["p$i"] ?? null)) !== $h) {
            $diff[] = "p$i: " . sgc_short(sgc_text($_SESSION["p$i"] ?? null));
        }
    }
    echo $diff === [] ? 'same' : implode("\n", $diff);
} elseif ($op === 'incr') {
    $_SESSION[$_GET['k']]['n'] = ($_SESSION[$_GET['k']]['n'] ?? 0) + 1;
    echo 'ok';
} else {
    http_response_code(400);
    echo 'unknown op';
}
