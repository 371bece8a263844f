<?php
// sessiongate_user_id() without session_start(), with the cache limiter
// ?limiter= names (session_cache_limiter(), as before a session_start())
// and the script's own Cache-Control from ?cc=.
if (isset($_GET['limiter'])) {
    session_cache_limiter($_GET['limiter']);
}
if (isset($_GET['cc'])) {
    header('Cache-Control: ' . $_GET['cc']);
}
header('Content-Type: text/plain');
$uid = sessiongate_user_id();
echo $uid === null ? "anonymous" : "user:" . $uid;
