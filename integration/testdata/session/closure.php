<?php
// closure.php: stores a value PHP cannot serialize (a closure; ?what=anon
// an anonymous class) next to a change of another key.
session_start();
$_SESSION['changed'] = 'yes';
$_SESSION['f'] = ($_GET['what'] ?? '') === 'anon' ? new class { public $a = 1; } : fn () => 1;
echo 'stored';
