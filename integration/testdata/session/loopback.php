<?php
// A page that requests another page of the site with the visitor's cookies,
// as WordPress's loopback requests do (?url= names it). ?release=1 first
// opens the session with read_and_close if the visitor has one, the
// README's advice (a visitor without one gets no session from it).
if (isset($_GET['release']) && isset($_COOKIE[session_name()])) {
    session_start(['read_and_close' => true, 'cache_limiter' => '']);
}
$ctx = stream_context_create(['http' => [
    'header' => 'Cookie: ' . ($_SERVER['HTTP_COOKIE'] ?? ''),
    'timeout' => 20,
    'ignore_errors' => true,
]]);
$body = @file_get_contents($_GET['url'], false, $ctx);
echo ($http_response_header[0] ?? 'no answer') . "\n" . $body;
