<?php
header('X-Sessiongate-Injected: 1');
header('X_Sessiongate_Other: 1');
echo json_encode(array_values(array_filter(array_keys($_SERVER), fn($k) => stripos((string)$k, 'sessiongate') !== false)));
