<?php
// shared_object.php: one object under two top-level keys, which the shared
// format can only keep as one opaque member for the whole session.
session_start();
$o = new stdClass();
$o->name = 'ana';
$_SESSION['user'] = $o;
$_SESSION['owner'] = $o;
echo 'ok';
