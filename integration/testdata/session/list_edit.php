<?php
// list_edit.php: a PHP page that edits one list Django stored under
// $_SESSION['l'] (integration/django_types_test.go):
//   ?m=change  $l[0]['n'] = 'changed'
//   ?m=append  $l[0][] = 'app'
//   ?m=set     $l[1]['zz'] = 1
//   ?m=shift   array_shift($l)
session_start();
$l = &$_SESSION['l'];
switch ($_GET['m'] ?? '') {
    case 'change': $l[0]['n'] = 'changed'; break;
    case 'append': $l[0][] = 'app'; break;
    case 'set': $l[1]['zz'] = 1; break;
    case 'shift': array_shift($l); break;
    default: http_response_code(400); echo 'm?'; exit;
}
unset($l);
echo 'ok';
