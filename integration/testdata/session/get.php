<?php
// Dumps the session as JSON without changing it.
session_start(['read_and_close' => true]);
header('Content-Type: application/json');
echo json_encode(['id' => session_id(), 'data' => $_SESSION, 'server_keys' => array_values(array_filter(array_keys($_SERVER), fn($k) => stripos((string)$k, 'sessiongate') !== false))]);
