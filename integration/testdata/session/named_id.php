<?php
// A script that finds a session by an ID it computes itself, as phpCAS's
// single logout does with an ID derived from the ticket.
session_id(hash('sha256', 'ST-1-' . ($_GET['ticket'] ?? 'demo')));
session_start();
echo session_id() === hash('sha256', 'ST-1-' . ($_GET['ticket'] ?? 'demo')) ? 'named' : 'new';
