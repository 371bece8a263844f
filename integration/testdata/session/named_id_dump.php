<?php
// named_id_dump.php: a script that opens a session by an ID it computes
// (an admin page that ends another user's session by its ID, phpCAS's
// single logout) and shows what it got.
session_id(hash('sha256', 'other-' . ($_GET['who'] ?? 'bob')));
session_start();
header('Content-Type: application/json');
echo json_encode($_SESSION);
if (!empty($_GET['destroy'])) {
    session_destroy();
}
