<?php
// A response PHP streams: headers and a first part flushed at once, the
// rest later, read ahead by the gateway.
session_start();
$_SESSION['streamed'] = 1;
header('Content-Type: text/plain');
echo str_repeat('a', 100000);
flush();
usleep(100000);
echo str_repeat('b', 100000);
