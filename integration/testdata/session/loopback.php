<?php
// A page that requests another page of the site with the visitor's cookies,
// as WordPress's loopback requests do (?url= names it). ?release=1 first
// opens the session with read_and_close, the README's advice.
if (isset($_GET['release'])) {
    session_start(['read_and_close' => true, 'cache_limiter' => '']);
}
$ctx = stream_context_create(['http' => [
    'header' => 'Cookie: ' . ($_SERVER['HTTP_COOKIE'] ?? ''),
    'timeout' => 20,
    'ignore_errors' => true,
]]);
$body = @file_get_contents($_GET['url'], false, $ctx);
echo ($http_response_header[0] ?? 'no answer') . "\n" . $body;
