<?php
// A legacy application with a session handler of its own (a database
// handler, say; here files in the temp directory), installed before
// session_start() as such code does. Counts visits in its own session.
require __DIR__ . '/own_handler_class.php';
session_set_save_handler(new OwnFileHandler('own_handler_sess'), true);
session_start();
$_SESSION['own'] = ($_SESSION['own'] ?? 0) + 1;
echo $_SESSION['own'];
