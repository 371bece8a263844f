<?php
// Receives a multipart upload: counts it in the session and reports the
// files PHP took and the upload progress entry the script sees.
session_start();
$_SESSION['uploads'] = ($_SESSION['uploads'] ?? 0) + 1;
$k = ini_get('session.upload_progress.prefix') . ($_POST[ini_get('session.upload_progress.name')] ?? '');
header('Content-Type: application/json');
echo json_encode([
    'id' => session_id(),
    'uploads' => $_SESSION['uploads'],
    'files' => array_map(fn($f) => ['error' => $f['error'], 'size' => $f['size']], $_FILES),
    'progress' => $_SESSION[$k] ?? null,
    'enabled' => ini_get('session.upload_progress.enabled'),
]);
