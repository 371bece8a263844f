<?php
// A counter in $_SESSION['counter']: each visit adds one. Django's
// /accounts/counter/ adds one to the same key; with the gateway's strict
// session lock (the default) no increment is lost, whichever side counts.
declare(strict_types=1);
require __DIR__ . '/lib/page.php';

session_start();
$n = $_SESSION['counter'] ?? 0;
$n = (is_int($n) ? $n : 0) + 1;
$_SESSION['counter'] = $n;
session_write_close();

page_start('Counter');
?>
<p>You have visited this counter <strong id="counter"><?= $n ?></strong>
time<?= $n === 1 ? '' : 's' ?> in this session. Reload to count; <a href="/accounts/counter/">/accounts/counter/</a>
counts in the same key from Django.</p>
<?php
page_end();
