<?php
// types.php?op=set|check: stores under "rt" (and a few top-level keys) PHP
// values that test the PHP <-> JSON mapping; check answers "same" when the
// session still holds exactly them (serialize() equal), else what differs.
class SgTypesFoo { public $x = 1; protected $y = [1, 2]; private $z = "a\0b"; }
function sg_types_values(): array {
    $o = new stdClass; $o->a = 1; $o->{'0'} = 'zero';
    $deep = 'bottom';
    for ($i = 0; $i < 60; $i++) { $deep = [$deep]; }
    return [
        'list' => [0 => 'a', 1 => 'b'],
        'one' => [1 => 'a'],
        'zero_str' => ['0' => 'a'],
        'mixed' => [0 => 'a', 'x' => 'b', 5 => 'c', '7' => 'd'],
        'unordered' => [1 => 'a', 0 => 'b'],
        'gap' => [0 => 'a', 2 => 'b'],
        'empty' => [],
        'nested_empty' => [[], ['k' => []]],
        'bigkey' => [PHP_INT_MAX => 'x', 9007199254740993 => 'y', PHP_INT_MIN => 'z'],
        'negkey' => [-1 => 'n', -5 => 'm'],
        'strkeys' => ["a\0b" => 1, '' => 2, ' 1' => 3, '01' => 4, '-0' => 5, '1.5' => 6, '9223372036854775808' => 7, '__php__' => 8],
        'only_tagname' => ['__php__' => 'x'],
        'max' => PHP_INT_MAX, 'min' => PHP_INT_MIN, 'safe1' => 9007199254740993,
        'f1' => 0.1, 'f2' => 1e300, 'f3' => 1.0, 'f4' => -1.5e-300, 'f5' => 123456789012345678.0,
        'f6' => 5e-324, 'f7' => 1e15, 'f8' => 1e16, 'f9' => 0.30000000000000004, 'f10' => -2.0,
        'negzero' => -0.0, 'inf' => INF, 'ninf' => -INF, 'nan' => NAN,
        't' => true, 'f' => false, 'n' => null, 'zero' => 0, 'estr' => '',
        'emoji' => "\u{1F600}", 'flag' => "\u{1F1EB}\u{1F1F7}", 'comb' => "e\u{301}", 'nul' => "a\0b",
        'bad' => "\xff\xfe", 'half' => "\xf0\x9f\x98", 'surr' => "\xed\xa0\x80", 'bom' => "\u{FEFF}x",
        'ctrl' => "\x01\x1f\"\\/\x7f", 'ls' => "\u{2028}\u{2029}", 'numstr' => '123', 'floatstr' => '1.0',
        'long' => str_repeat("x\u{e9}", 100000),
        'deep' => $deep,
        'obj' => $o, 'foo' => new SgTypesFoo,
        'objlist' => [new SgTypesFoo, new SgTypesFoo],
    ];
}
session_start();
header('Content-Type: text/plain');
if (($_GET['op'] ?? '') === 'set') {
    $_SESSION['rt'] = sg_types_values();
    $_SESSION[5] = 'five';
    $_SESSION['top_empty'] = [];
    echo 'ok';
    return;
}
if (($_GET['op'] ?? '') === 'setkey') {
    $_SESSION['php_later'] = 'yes';
}
$want = sg_types_values();
$got = $_SESSION['rt'] ?? null;
unset($got['py']); // what Django's types-mutate adds
$diff = [];
foreach ($want as $k => $v) {
    if (!is_array($got) || !array_key_exists($k, $got)) { $diff[] = "$k: missing"; continue; }
    if (serialize($got[$k]) !== serialize($v)) { $diff[] = "$k: " . substr(serialize($got[$k]), 0, 200) . ' != ' . substr(serialize($v), 0, 200); }
}
if (is_array($got) && array_keys($got) !== array_keys($want)) { $diff[] = 'key order: ' . implode(',', array_keys($got)); }
if (($_SESSION[5] ?? null) !== 'five') { $diff[] = 'top 5: ' . var_export($_SESSION[5] ?? null, true); }
if (($_SESSION['top_empty'] ?? null) !== []) { $diff[] = 'top_empty'; }
echo $diff === [] ? 'same' : implode("\n", $diff);
