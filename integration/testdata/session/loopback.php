<?php
// A page that requests another page of the site with the visitor's cookies,
// as WordPress's loopback requests do (?url= names it). ?release=1 first
// lets the session go with sessiongate_release(), the README's must-use
// plugin for WordPress (a visitor without a session gets none from it).
if (isset($_GET['release']) && function_exists('sessiongate_release')) {
    sessiongate_release();
}
$ctx = stream_context_create(['http' => [
    'header' => 'Cookie: ' . ($_SERVER['HTTP_COOKIE'] ?? ''),
    'timeout' => 20,
    'ignore_errors' => true,
]]);
$body = @file_get_contents($_GET['url'], false, $ctx);
echo ($http_response_header[0] ?? 'no answer') . "\n" . $body;
