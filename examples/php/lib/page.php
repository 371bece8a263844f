<?php
// Shared helpers of the session pages (who.php, cart.php, counter.php).
// Included, never a page: a direct request gets 404.
declare(strict_types=1);

if (realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    http_response_code(404);
    exit;
}

function h(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

/** bridged reports whether the gateway's PHP prepend is installed: without
 *  it there is no shared session (SESSIONGATE_SESSIONS=off, or the pool
 *  lacks auto_prepend_file). */
function bridged(): bool
{
    return function_exists('sessiongate_user_id');
}

/** csrf_token returns this session's token for the PHP forms, made on first
 *  use. The session must be open for writing. The leading underscore marks
 *  it internal, as Django does with its own keys (the example's Django views
 *  leave such keys out of their answers). */
function csrf_token(): string
{
    if (!is_string($_SESSION['_php_csrf'] ?? null)) {
        $_SESSION['_php_csrf'] = bin2hex(random_bytes(16));
    }
    return $_SESSION['_php_csrf'];
}

/** csrf_ok checks a POSTed token against the session's. The gateway's
 *  cookie is SameSite=Lax already; the token also stops same-site forgeries. */
function csrf_ok(): bool
{
    $sent = $_POST['csrf'] ?? null;
    $want = $_SESSION['_php_csrf'] ?? null;
    return is_string($sent) && is_string($want) && hash_equals($want, $sent);
}

/** redirect_self answers a POST with 303 to the same page (post/redirect/get). */
function redirect_self(): void
{
    $path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
    header('Location: ' . $path, true, 303);
}

function page_start(string $title): void
{
    header('Content-Type: text/html; charset=utf-8');
    ?><!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>sessiongate demo: <?= h($title) ?></title>
<link rel="stylesheet" href="/assets/style.css">
</head>
<body>
<nav><a href="/">home</a> · <a href="/who.php">who is logged in</a> · <a href="/cart.php">cart</a> ·
<a href="/counter.php">counter</a> · <a href="/accounts/">Django side</a> · <a href="/admin/">Django admin</a></nav>
<h1><?= h($title) ?></h1>
<?php if (!bridged()): ?>
<p class="warn">The sessiongate prepend is not loaded: this PHP has no shared session.</p>
<?php endif;
}

function page_end(): void
{
    echo "</body>\n</html>\n";
}
