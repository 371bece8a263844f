<?php
// A page that answers a conditional request with 304 and no body.
header('ETag: "v1"');
if (($_SERVER['HTTP_IF_NONE_MATCH'] ?? '') === '"v1"') {
    http_response_code(304);
    exit;
}
header('Content-Type: text/plain');
echo "fresh";
