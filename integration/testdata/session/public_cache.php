<?php
// A page that asks for shared caching while it starts a session: PHP's
// "public" cache limiter sends Cache-Control: public, max-age=10800.
session_cache_limiter('public');
session_start();
$_SESSION['seen'] = 1;
echo "ok";
