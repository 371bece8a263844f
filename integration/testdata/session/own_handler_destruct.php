<?php
// A legacy application with a session handler of its own, installed without
// PHP's shutdown hook (register_shutdown false, as the six-callback form of
// session_set_save_handler() also does), and a cart object that saves
// itself into $_SESSION in its destructor. PHP writes such a session after
// the destructors, so the change is kept.
require __DIR__ . '/own_handler_class.php';
class OwnCart
{
    public function __destruct()
    {
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
    }
}
session_set_save_handler(new OwnFileHandler('own_destruct_sess'), false);
session_start();
$cart = new OwnCart();
echo $_SESSION['n'] ?? 0;
