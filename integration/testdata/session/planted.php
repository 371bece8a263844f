<?php
// planted.php: the classes of the objects PHP built when it read the
// session ("none" when it holds none). Planted declares the hooks PHP runs
// while it unserializes; they record that they ran. planted.php?set=1
// stores a Planted object, as an application's own code does.
class Planted
{
    public function __wakeup(): void { $GLOBALS['planted_ran'] = true; }
    public function __destruct() { $GLOBALS['planted_ran'] = true; }
}
function sessionClasses(mixed $v, array &$out): void
{
    if (is_object($v)) {
        $out[] = get_class($v);
    } elseif (is_array($v)) {
        foreach ($v as $x) {
            sessionClasses($x, $out);
        }
    }
}
header('Content-Type: text/plain');
if (isset($_GET['set'])) {
    session_start();
    $_SESSION['planted'] = new Planted();
    echo 'ok';
    return;
}
session_start(['read_and_close' => true]);
$classes = [];
sessionClasses($_SESSION, $classes);
echo $classes === [] && empty($GLOBALS['planted_ran']) ? 'none' : implode(',', $classes) . (empty($GLOBALS['planted_ran']) ? '' : ' (hook ran)');
