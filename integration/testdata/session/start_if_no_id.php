<?php
// start_if_no_id.php: the idiom older than session_status(): start the
// session only when session_id() says none is active. With PHP's files
// handler session_id() is "" before session_start() (the ID is read from the
// cookie when the session starts).
//   ?chosen=1  the script names its own ID before starting (refused)
$before = session_id();
if (isset($_GET['chosen'])) {
    session_id(str_repeat('a', 64));
    session_start();
} elseif (!session_id()) {
    session_start();
}
$user = $_SESSION['user'] ?? null;
$_SESSION['seen'] = ($_SESSION['seen'] ?? 0) + 1;
header('Content-Type: application/json');
echo json_encode(['before' => $before, 'id' => session_id(), 'user' => $user]);
