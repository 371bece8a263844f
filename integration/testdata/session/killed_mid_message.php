<?php
// A worker killed while it sends a session message after its output began
// (the OOM killer, request_terminate_timeout): the first chunk of a frame
// of two goes out, the second never does.
while (ob_get_level()) {
    ob_end_flush();
}
echo 'page';
flush();
usleep(100000);
error_log('@sg1:' . getenv('SESSIONGATE_NONCE') . ':0:0:AAAA#', 4);
flush();
usleep(100000);
posix_kill(getmypid(), 9);
sleep(5);
