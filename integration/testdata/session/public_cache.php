<?php
// A page that asks for shared caching while it starts a session: PHP's
// "public" cache limiter sends Cache-Control: public, max-age=10800, and
// the CDNs' own fields, which each CDN reads before Cache-Control.
session_cache_limiter('public');
header('CDN-Cache-Control: max-age=600');
header('Cloudflare-CDN-Cache-Control: max-age=600');
header('Surrogate-Control: max-age=600');
session_start();
$_SESSION['seen'] = 1;
echo "ok";
