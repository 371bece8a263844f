<?php
// Front controller of the demo site. The gateway runs this file for every
// URL that is not an existing file (SESSIONGATE_INDEX, like nginx's
// `try_files $uri $uri/ /index.php?$args`), with REQUEST_URI intact, so a
// router in PHP sees the path the client asked for.
declare(strict_types=1);

function h(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
$routes = [
    '/' => 'Home',
    '/about' => 'About (no about.php exists: the front controller answers)',
];
$title = $routes[$path] ?? null;
if ($title === null) {
    http_response_code(404);
    $title = 'Not found (answered by index.php, status set by PHP)';
}

$shown = [
    'REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'SCRIPT_NAME', 'SCRIPT_FILENAME',
    'PATH_INFO', 'DOCUMENT_ROOT', 'REMOTE_ADDR', 'REMOTE_PORT', 'SERVER_NAME', 'SERVER_PORT',
    'SERVER_PROTOCOL', 'REQUEST_SCHEME', 'HTTPS', 'SERVER_SOFTWARE', 'HTTP_HOST', 'HTTP_USER_AGENT',
];
?><!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>sessiongate demo: <?= h($title) ?></title>
<link rel="stylesheet" href="/assets/style.css">
</head>
<body>
<h1><?= h($title) ?></h1>
<p>This page is PHP, run by php-fpm behind <strong>sessiongate</strong>. The
stylesheet is a static file the gateway served itself, without PHP.</p>
<ul>
  <li><a href="/">/</a> and <a href="/about?from=home">/about?from=home</a>: routes of this front controller</li>
  <li><a href="/no/such/page">/no/such/page</a>: unknown route, 404 from PHP</li>
  <li><a href="/pathinfo.php/articles/42?x=1">/pathinfo.php/articles/42</a>: a script with PATH_INFO</li>
  <li><a href="/assets/style.css">/assets/style.css</a>: static file (ETag, Range, 304)</li>
  <li><a href="/.env">/.env</a>: dotfiles are refused (404), they never reach PHP nor the client</li>
</ul>
<h2>One session with Django</h2>
<p>Django serves <a href="/admin/">/admin/</a> and <a href="/accounts/">/accounts/</a>
through the same gateway; both apps share one session, kept in Redis.</p>
<ul>
  <li><a href="/who.php">/who.php</a>: who is logged in (log in with Django's admin: <code>demo</code> / <code>demo-password</code>)</li>
  <li><a href="/cart.php">/cart.php</a>: a cart in <code>$_SESSION</code>, also at Django's <a href="/accounts/cart/">/accounts/cart/</a></li>
  <li><a href="/counter.php">/counter.php</a>: a session counter Django counts in too (<a href="/accounts/counter/">/accounts/counter/</a>)</li>
</ul>
<h2>What PHP received</h2>
<table>
<?php foreach ($shown as $name): ?>
  <tr><th><?= h($name) ?></th><td><code><?= h((string)($_SERVER[$name] ?? '')) ?></code></td></tr>
<?php endforeach; ?>
</table>
<?php if ($_GET): ?>
<h2>Query parameters</h2>
<table>
<?php foreach ($_GET as $k => $v): ?>
  <tr><th><?= h((string)$k) ?></th><td><code><?= h(is_array($v) ? json_encode($v) : (string)$v) ?></code></td></tr>
<?php endforeach; ?>
</table>
<?php endif; ?>
</body>
</html>
