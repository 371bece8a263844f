<?php
session_start();
$_SESSION['regenerated'] = true;
session_regenerate_id(true);
echo session_id();
