<?php
session_start();
$_SESSION['fatal'] = ($_SESSION['fatal'] ?? 0) + 1;
undefined_function_sessiongate();
