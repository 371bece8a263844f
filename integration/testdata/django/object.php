<?php
// object.php?set=1 stores a PHP object in the session; object.php shows it.
// The class is declared before session_start() so unserialize() can build it.
class Basket
{
    public $items = [];
    private $owner = 'ana';
    public function owner(): string { return $this->owner; }
}
session_start();
header('Content-Type: text/plain');
if (isset($_GET['set'])) {
    $b = new Basket();
    $b->items = ['apple' => 2];
    $_SESSION['basket'] = $b;
    echo "set";
    return;
}
session_write_close();
$b = $_SESSION['basket'] ?? null;
echo $b instanceof Basket ? 'Basket:' . $b->owner() . ':' . json_encode($b->items) : 'none:' . gettype($b);
