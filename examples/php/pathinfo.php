<?php
// A script addressed with extra path segments: /pathinfo.php/articles/42 runs
// this file with SCRIPT_NAME=/pathinfo.php and PATH_INFO=/articles/42, the
// way nginx's fastcgi_split_path_info does, but only because pathinfo.php is
// a real file ending in .php.
declare(strict_types=1);

header('Content-Type: text/plain; charset=utf-8');
$info = $_SERVER['PATH_INFO'] ?? '';
$parts = array_values(array_filter(explode('/', $info), 'strlen'));
echo "SCRIPT_NAME     = ", $_SERVER['SCRIPT_NAME'] ?? '', "\n";
echo "PATH_INFO       = ", $info, "\n";
echo "PATH_TRANSLATED = ", $_SERVER['PATH_TRANSLATED'] ?? '', "\n";
echo "REQUEST_URI     = ", $_SERVER['REQUEST_URI'] ?? '', "\n";
echo "segments        = ", json_encode($parts, JSON_UNESCAPED_SLASHES), "\n";
