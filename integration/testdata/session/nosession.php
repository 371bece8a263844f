<?php
echo "no session here";
