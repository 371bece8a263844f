<?php
// server_keys.php: the gateway's internal params the application can see in
// $_SERVER (none, whatever the pool's session settings).
header('Content-Type: text/plain');
echo implode(',', array_filter(array_keys($_SERVER), fn($k) => is_string($k) && str_starts_with($k, 'SESSIONGATE_')));
