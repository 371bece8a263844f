<?php
// destroy.php: a logout page.
//   ?regen=1  the session's ID is regenerated first (a login flow's
//             session_regenerate_id(true)), then destroyed
session_start();
if (isset($_GET['regen'])) {
    session_regenerate_id(true);
}
session_destroy();
echo "destroyed";
