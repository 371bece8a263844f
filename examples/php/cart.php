<?php
// A cart kept in $_SESSION['cart'] as item => quantity. Django reads and
// changes the same value at /accounts/cart/ (JSON), through the gateway's
// shared session.
declare(strict_types=1);
require __DIR__ . '/lib/page.php';

const CATALOGUE = ['apple', 'pear', 'kiwi', 'bread', 'cheese'];

/** cart returns the session's cart, ignoring anything that is not a
 *  quantity (another app may have stored something else there). */
function cart(): array
{
    $c = $_SESSION['cart'] ?? [];
    $out = [];
    if (is_array($c)) {
        foreach ($c as $item => $qty) {
            if (is_int($qty) && $qty > 0) {
                $out[(string)$item] = $qty;
            }
        }
    }
    return $out;
}

session_start();
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    if (!csrf_ok()) {
        http_response_code(403);
        page_start('Cart: form expired');
        echo '<p>The form is out of date. <a href="/cart.php">Reload the cart</a>.</p>';
        page_end();
        exit;
    }
    $item = $_POST['item'] ?? '';
    $c = cart();
    if (is_string($item) && $item !== '') {
        if (isset($_POST['add']) && in_array($item, CATALOGUE, true)) {
            $c[$item] = ($c[$item] ?? 0) + 1;
        } elseif (isset($_POST['remove']) && isset($c[$item])) {
            if (--$c[$item] <= 0) {
                unset($c[$item]);
            }
        }
    }
    $_SESSION['cart'] = $c;
    redirect_self();
    exit;
}
$token = csrf_token();
$c = cart();
// Nothing left to write but the token: let other requests of this session run.
session_write_close();

page_start('Cart');
?>
<p>The cart lives in the shared session. Django shows and changes the same
cart at <a href="/accounts/cart/">/accounts/cart/</a>.</p>
<?php if (!$c): ?>
<p id="cart-empty">The cart is empty.</p>
<?php else: ?>
<table id="cart">
<?php foreach ($c as $item => $qty): ?>
  <tr><th><?= h($item) ?></th><td class="qty"><?= $qty ?></td><td>
    <form method="post"><input type="hidden" name="csrf" value="<?= h($token) ?>">
    <input type="hidden" name="item" value="<?= h($item) ?>"><button name="remove" value="1">remove one</button></form>
  </td></tr>
<?php endforeach; ?>
</table>
<?php endif; ?>
<h2>Add</h2>
<?php foreach (CATALOGUE as $item): ?>
<form method="post" style="display:inline"><input type="hidden" name="csrf" value="<?= h($token) ?>">
<input type="hidden" name="item" value="<?= h($item) ?>"><button name="add" value="1"><?= h($item) ?></button></form>
<?php endforeach; ?>
<?php
page_end();
