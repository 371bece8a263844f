<?php
// SimpleSAMLphp (session.cookie.samesite) and payment-return pages ask PHP
// for SameSite=None session cookies.
session_set_cookie_params(['samesite' => 'None', 'secure' => true]);
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
echo $_SESSION['n'];
