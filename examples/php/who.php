<?php
// Who is logged in: the user Django's login put in the shared session.
// sessiongate_user_id() (from the gateway's prepend) reads Django's
// _auth_user_id; the name is the "username" key examples/django stores at
// login. Logging in and out happens in Django's admin.
declare(strict_types=1);
require __DIR__ . '/lib/page.php';

if (bridged() && isset($_COOKIE[session_name()])) {
    // Read only, and only for a visitor who has a session: it is released
    // at once, and an anonymous visitor gets no session from this page
    // (session_start() would give one, as PHP does behind nginx).
    session_start(['read_and_close' => true]);
}
$id = bridged() ? sessiongate_user_id() : null;
$name = $id !== null && is_string($_SESSION['username'] ?? null) ? $_SESSION['username'] : null;

page_start('Who is logged in');
if ($id === null): ?>
<p id="who">Nobody: you are <strong>anonymous</strong> on the PHP side.</p>
<p><a id="login" href="/admin/login/?next=/who.php">Log in with Django's admin</a>
(demo login: <code>demo</code> / <code>demo-password</code>), then come back here.</p>
<?php else: ?>
<p id="who">Logged in as <strong id="username"><?= h($name ?? '(no name in the session)') ?></strong>
(Django user id <strong id="user-id"><?= h($id) ?></strong>). PHP never saw the
password: Django logged you in, and the gateway shares the session.</p>
<form method="post" action="/admin/logout/">
  <input type="hidden" name="csrfmiddlewaretoken" value="<?= h(is_string($_COOKIE['csrftoken'] ?? null) ? $_COOKIE['csrftoken'] : '') ?>">
  <input type="hidden" name="next" value="/who.php">
  <button id="logout" type="submit">Log out (Django's logout)</button>
</form>
<?php endif; ?>
<p>Django's view of the same session: <a href="/accounts/whoami/">/accounts/whoami/</a>.</p>
<?php
page_end();
