<?php
// An application with a session handler of its own (MediaWiki's, say) that
// asks for the Django user while its own session is active, as a single
// sign-on hook does.
require __DIR__ . '/own_handler_class.php';
session_set_save_handler(new OwnFileHandler('own_whoami_sess'), true);
session_start();
$_SESSION['_auth_user_id'] = 'app-own';
header('Content-Type: text/plain');
$uid = sessiongate_user_id();
echo $uid === null ? "anonymous" : "user:" . $uid;
