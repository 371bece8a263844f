<?php
header('Content-Type: text/plain');
$uid = sessiongate_user_id();
echo $uid === null ? "anonymous" : "user:" . $uid;
