<?php
// A slow page (a report, a stream) that never starts its session. The
// gateway locked the session before PHP ran, so it stays locked until the
// script ends. ?ms= is how long it takes.
usleep((int)($_GET['ms'] ?? 3000) * 1000);
echo "slept";
