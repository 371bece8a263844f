<?php
// destruct.php: changes the session where PHP's files handler still saves
// them, because PHP writes the session after the script's shutdown
// functions and object destructors: a cart object that saves itself in its
// destructor, an object holding a reference into $_SESSION, and a shutdown
// function registered while the request shuts down.
class Cart
{
    public array $items = [];
    public function __destruct()
    {
        $_SESSION['cart'] = $this->items;
    }
}
class Visits
{
    private $n;
    public function __construct()
    {
        $this->n = &$_SESSION['visits'];
    }
    public function __destruct()
    {
        $this->n = ($this->n ?? 0) + 1;
    }
}
session_start();
$cart = new Cart();
$cart->items[] = 'apple';
$visits = new Visits();
register_shutdown_function(function () {
    register_shutdown_function(function () {
        $_SESSION['nested'] = ($_SESSION['nested'] ?? 0) + 1;
    });
});
header('Content-Type: text/plain');
// big=1: output beyond PHP's buffer, so the headers leave before shutdown.
echo isset($_GET['big']) ? str_repeat('x', 100000) : 'ok';
