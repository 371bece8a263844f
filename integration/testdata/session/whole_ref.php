<?php
// whole_ref.php: a session class that keeps a reference to the whole
// $_SESSION (Kohana's native session does, $this->_data =& $_SESSION) and
// counts in its destructor, where PHP's files handler still saves changes.
class SgSessionBag
{
    private $data;
    public function __construct()
    {
        session_start();
        $this->data = &$_SESSION;
    }
    public function __destruct()
    {
        $this->data['bag_visits'] = ($this->data['bag_visits'] ?? 0) + 1;
    }
}
$bag = new SgSessionBag();
header('Content-Type: text/plain');
echo 'ok';
