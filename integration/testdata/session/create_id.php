<?php
// create_id.php: session_create_id() while the session is active (PHP's
// documented way to prepare an ID for a custom regeneration) returns a new
// ID, as with PHP's files handler; then the session is written as usual.
session_start();
$new = session_create_id();
$_SESSION['created'] = is_string($new);
header('Content-Type: application/json');
echo json_encode(['new' => $new, 'id' => session_id()]);
