<?php
// linked_value.php: one key whose value holds the same object twice and a
// PHP reference between two of its elements (links inside one value, which
// the shared format keeps under that key), after the keys already there.
session_start();
$o = new stdClass();
$o->n = 1;
$pair = [$o, $o, 'x', null];
$pair[3] = &$pair[2];
$_SESSION['pair'] = $pair;
echo 'ok';
