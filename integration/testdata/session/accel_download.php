<?php
// A protected download the way WooCommerce's "X-Accel-Redirect/X-Sendfile"
// method sends one (WC_Download_Handler::download_file_xsendfile) when
// SERVER_SOFTWARE names nginx: the session says who may download, the
// count is kept in the session, the headers describe the file, and the
// body is empty: the server in front sends the file.
session_start();
if (empty($_SESSION['user'])) {
    http_response_code(403);
    echo "log in first";
    exit;
}
$_SESSION['downloads'] = ($_SESSION['downloads'] ?? 0) + 1;
if (stripos(getenv('SERVER_SOFTWARE'), 'nginx') === false) {
    http_response_code(500);
    echo "WooCommerce would fall back to sending the file itself";
    exit;
}
$file = $_GET['file'] ?? '';
$path = __DIR__ . '/wp-content/uploads/woocommerce_uploads/' . $file;
@session_write_close();
header('X-Robots-Tag: noindex, nofollow', true);
header('Content-Type: application/octet-stream');
header('Content-Description: File Transfer');
header('Content-Disposition: attachment; filename="' . basename($file) . '";');
header('Content-Transfer-Encoding: binary');
header('Content-Length: ' . @filesize($path));
$xsendfile_path = trim(preg_replace('`^' . str_replace('\\', '/', getcwd()) . '`', '', $path), '/');
header("X-Accel-Redirect: /$xsendfile_path");
exit;
