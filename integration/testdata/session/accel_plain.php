<?php
// A download handed to the gateway with X-Accel-Redirect, empty body.
session_start();
header('Content-Type: text/plain');
header('X-Accel-Redirect: /internal/file.txt');
