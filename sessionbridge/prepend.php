<?php
/*
 * sessiongate prepend: makes PHP's session API use the session the gateway
 * loaded for this request. Installed with auto_prepend_file (the gateway sends
 * it through PHP_VALUE on every request). Applications keep calling
 * session_start(), $_SESSION, session_regenerate_id(), session_destroy() and
 * session_write_close() unchanged.
 *
 * Protocol (docs/protocol.md): the session arrives base64-encoded in the
 * FastCGI params SESSIONGATE_DATA_0..N-1 (php_serialize format); changes go
 * back as frames: in an X-Sessiongate-Frame response header when the request
 * ends before its headers were sent, otherwise on FCGI_STDERR via
 * error_log($frame, 4) + flush(). The gateway strips both.
 */

if (!class_exists('SessiongateSessionHandler', false)) {

/*
 * No updateTimestamp() method: PHP keeps this handler's create_sid,
 * validateId and updateTimestamp for an application that installs its own
 * handler with the six callbacks of session_set_save_handler() (Roundcube),
 * and an updateTimestamp of ours would take that handler's writes of an
 * unchanged session (with none, PHP calls its write). write() tells an
 * unchanged session apart itself; create_sid() and validateId() check that
 * the session is this handler's (isOpen).
 */
final class SessiongateSessionHandler implements SessionHandlerInterface, SessionIdInterface
{
    /* Frames (at most about 845 bytes) fit php-fpm's default log_limit:
     * 1024 bytes, of which "NOTICE: ", "PHP message: " and a newline take
     * 22, so they arrive whole on any pool (docs/protocol.md). */
    private const CHUNK = 800;
    private const FRAME_HEADER = 'X-Sessiongate-Frame';
    /* Larger messages take stderr even at the end: the gateway caps the
     * header block PHP may send (8 MiB, shared with the app's headers). */
    private const FRAME_HEADER_MAX = 1048576;
    /* A session text from this size on is not kept while its message is
     * sealed at the end of the request (write): see write(). */
    private const LARGE = 1048576;

    private string $nonce;
    private string $key = '';
    /** php-fpm's fastcgi.logging is off (php.ini or a pool that loads this
     * file itself; the gateway's PHP_VALUE turns it on): error_log()
     * output then reaches php-fpm's log, never the gateway, so every
     * message rides in a response header, and one that comes after the
     * headers left cannot be sent at all. */
    public bool $noStderr = false;
    private string $gatewayId;
    /** Set while the request ends: frames then leave with the response. */
    public bool $finishing = false;
    private ?string $data = null;
    /** @var list<string> the SESSIONGATE_DATA_n params (base64), until
     * loadedData() decodes them */
    private array $encoded = [];
    /** The gateway takes the "hold" messages (SESSIONGATE_FEATURES):
     * writeAtShutdown() keeps its session lock (docs/protocol.md). */
    private bool $canHold = false;
    /** writeAtShutdown() is sending: a write or touch keeps the lock. */
    private bool $holding = false;
    /** @var array<string, true> IDs minted in this request */
    private array $minted = [];
    /** @var array<string, true> minted IDs a session was opened with */
    private array $opened = [];
    /** The ID whose data is the session now ('' none): what
     * sessiongate_user_id() reads once the script closed its session. */
    private string $current;
    /** @var array<string, string> what this request wrote, by ID */
    private array $written = [];
    private int $seq = 0;
    private ?string $active = null;
    private bool $closedByWrite = false;
    /** @var array<string, mixed> keys forScript() could not show the script:
     * their value texts, or their values when it built the session ($built) */
    private array $hidden = [];
    /** forScript() converted the session by building its values (a
     * session its text conversion cannot carry): write() converts back
     * the same way. */
    private bool $built = false;
    /** @var list<int|string> the keys of the session forScript() read, in order */
    private array $readOrder = [];
    /** A session was opened in this request: the gateway's ID has been
     * handed to PHP (or replaced) and create_sid() mints from now on. */
    private bool $started = false;
    /** @var array<string, string> the data PHP last handed to write()
     * (a touch included), by ID, in the script's format */
    private array $seen = [];
    /** The ID writeAtShutdown() wrote ('' none): PHP writes it once more
     * at the very end, and only a change goes to the gateway. */
    private string $late = '';
    /** writeAtShutdown() sent a change and PHP has not written the session
     * since: the script may still throw that change away, with
     * session_abort() (close() with no write before it) or session_reset()
     * (read()) in an object destructor, a shutdown function registered
     * during shutdown or an output callback. */
    private bool $lateOpen = false;
    /** The session text (php_serialize) as it was before writeAtShutdown()
     * wrote its change, the one session_abort() and session_reset() go
     * back to; null for a session from LARGE on, not held twice (see
     * write()). */
    private ?string $beforeLate = null;
    /** The request came without the gateway's params and open() has yet
     * to say so: its sessions cannot be kept. */
    private bool $warnNoGateway = false;
    /** @var array<string, string> IDs PHP took without asking this handler,
     * each mapped to the session it stands for (see adopt) */
    private array $alias = [];
    /** open() was called and close() not yet: the active session, if any,
     * is this handler's and not one of the application's own handler. */
    private bool $isOpen = false;
    /** @var array<string, string> what read() gave PHP, by ID: PHP's
     * lazy_write compares the session with it before writing */
    private array $readBack = [];
    /** The ID exposeCookie() put in $_COOKIE ('' none): it is the
     * gateway's, never an ID for an application's own handler. */
    private string $exposed = '';
    /** @var array the cookies the client sent, before exposeCookie() */
    private array $clientCookies = [];
    /** validateId() has told the log of an ID the script named. */
    private bool $warnedNamedId = false;
    /** validateId() refused an ID the script chose: the session_start()
     * asking create_sid() now gets a new session, not the gateway's. */
    private bool $namedRefused = false;
    /** The gateway's cookie is SameSite=None (SESSIONGATE_SESSION_COOKIE_SAMESITE). */
    private bool $sameSiteNone = false;
    /** open() has told the log of a script that asks for SameSite=None. */
    private bool $warnedSameSite = false;
    /** release() let the gateway's lock go before the script started
     * the session. */
    private bool $releasedUnstarted = false;
    /** The session's Django login hash (_auth_user_hash) when a password
     * change in Django ended that login (SESSIONGATE_LOGIN_REVOKED). */
    private string $revokedLogin = '';
    /** PHP's own session array, bound by reference in read() as
     * session_start() binds $_SESSION to it: PHP writes it even after the
     * script's unset($_SESSION), and so must write() for PHP's "php" and
     * "php_binary" formats, which serialize it (untyped: a script may
     * assign $_SESSION anything). */
    private mixed $vars = null;

    public function revokedLogin(): string
    {
        return $this->revokedLogin;
    }

    public function __construct(array $server)
    {
        $this->clientCookies = $_COOKIE;
        $this->nonce = (string)($server['SESSIONGATE_NONCE'] ?? '');
        $this->warnNoGateway = $this->nonce === '';
        $this->gatewayId = (string)($server['SESSIONGATE_SESSION_ID'] ?? '');
        $this->sameSiteNone = ($server['SESSIONGATE_COOKIE_SAMESITE'] ?? '') === 'none';
        $this->revokedLogin = (string)($server['SESSIONGATE_LOGIN_REVOKED'] ?? '');
        $this->current = $this->gatewayId;
        $key = (string)($server['SESSIONGATE_FRAME_KEY'] ?? '');
        if ($this->nonce !== '' && (strlen($key) !== 64 || !function_exists('openssl_encrypt'))) {
            // Frames are encrypted so that a php-fpm log that copies
            // error_log() output (catch_workers_output) never holds
            // session data; without the key or openssl, no session.
            error_log('sessiongate: no frame key or no openssl extension; sessions disabled for this request', 4);
            $this->nonce = '';
        }
        if ($this->nonce === '') {
            // Not reached through the gateway: fail closed, no session.
            $this->gatewayId = '';
            $this->revokedLogin = '';
            $this->current = '';
            return;
        }
        $this->key = (string)hex2bin($key);
        $this->noStderr = !filter_var(ini_get('fastcgi.logging'), FILTER_VALIDATE_BOOLEAN);
        $this->canHold = in_array('hold', explode(' ', (string)($server['SESSIONGATE_FEATURES'] ?? '')), true);
        // Kept as they came (the same strings as the params, no copy) and
        // decoded only when the script opens the session.
        $n = (int)($server['SESSIONGATE_DATA_COUNT'] ?? 0);
        for ($i = 0; $i < $n; $i++) {
            $this->encoded[] = (string)($server['SESSIONGATE_DATA_' . $i] ?? '');
        }
    }

    /**
     * Shows the gateway's session in $_COOKIE under the session's name,
     * where the browser's session cookie is behind nginx; the browser holds
     * the gateway's signed cookie instead, under another name. Code that
     * resumes a session only for a visitor who has one tests
     * isset($_COOKIE[session_name()]) before session_start() (Yii's
     * Session::getHasSessionId(), CakePHP's Session::_hasSession(),
     * hand-written "if (isset($_COOKIE[...])) session_start();"), and
     * Symfony's Request::hasPreviousSession() looks there too: its firewall
     * loads the logged-in user, and migrates the session at login, only
     * when it finds it. Called before the script runs, under the name the
     * pool gives sessions, and again when the script opens the session
     * under a name of its own. A cookie of that name the client sent is left
     * as it came. PHP's session_start() then takes the ID from there, so
     * PHP sends no cookie of its own for it.
     */
    public function exposeCookie(): void
    {
        $name = session_name();
        if ($this->gatewayId !== '' && is_string($name) && $name !== '' && !isset($_COOKIE[$name])) {
            $_COOKIE[$name] = $this->gatewayId;
            $this->exposed = $this->gatewayId;
        }
    }

    /** The php_serialize text the gateway loaded, '' when none. */
    public function loadedData(): string
    {
        if ($this->data === null) {
            // Param by param, each dropped once decoded, so that the
            // base64 text and the session are not both held whole (a
            // session of megabytes must fit PHP's memory_limit as with
            // PHP's own handler). A param whose length is no multiple of
            // 4 carries its last characters over to the next.
            $raw = '';
            $carry = '';
            $last = count($this->encoded) - 1;
            foreach (array_keys($this->encoded) as $i) {
                $part = $carry . $this->encoded[$i];
                unset($this->encoded[$i]);
                $cut = $i === $last ? strlen($part) : strlen($part) - strlen($part) % 4;
                $carry = (string)substr($part, $cut);
                $bytes = base64_decode($cut === strlen($part) ? $part : substr($part, 0, $cut), true);
                unset($part);
                if ($bytes === false) {
                    $raw = false;
                    break;
                }
                $raw .= $bytes;
                unset($bytes);
            }
            $this->encoded = [];
            $this->data = $raw === false ? '' : $raw;
        }
        return $this->data;
    }

    /** The php_serialize text of the session as the script left it. */
    public function currentData(): string
    {
        $id = $this->current;
        if ($id === '') {
            return '';
        }
        if (isset($this->written[$id])) {
            return $this->written[$id];
        }
        return $id === $this->gatewayId ? $this->loadedData() : '';
    }

    public function open(string $path, string $name): bool
    {
        if ($this->warnNoGateway) {
            // php CLI, php -S, or php-fpm reached without the gateway (a
            // health check, another vhost on the pool): the session works
            // until the script ends and its write fails. PHP's own warning
            // then names session.save_path, which is not the cause.
            $this->warnNoGateway = false;
            error_log('sessiongate: this request brought no SESSIONGATE_NONCE param (php CLI, php -S, a direct FastCGI request, or a gateway with SESSIONGATE_SESSIONS=off, which leaves PHP its own sessions only once the pool no longer loads this file); its session is not stored', 4);
        }
        if (!$this->warnedSameSite && !$this->sameSiteNone && $this->nonce !== ''
            && strcasecmp((string)ini_get('session.cookie_samesite'), 'None') === 0) {
            // SimpleSAMLphp and payment-return pages need the session on a
            // POST back from another site. The gateway's cookie, not PHP's,
            // reaches the browser, and its SameSite is the gateway's: under
            // Lax the state is lost with no other trace.
            $this->warnedSameSite = true;
            error_log('sessiongate: the script asks for SameSite=None session cookies (session.cookie_samesite), which the gateway\'s cookie does not follow: a POST back from another site (SAML, a payment provider) arrives without the session. Set SESSIONGATE_SESSION_COOKIE_SAMESITE=none and SESSIONGATE_SESSION_COOKIE_SECURE=on', 4);
        }
        $this->isOpen = true;
        return true;
    }

    public function close(): bool
    {
        $this->isOpen = false;
        if ($this->lateOpen && $this->active === $this->late) {
            // session_abort() after writeAtShutdown(): PHP's own handler
            // would not have stored the change; it goes back (and the
            // gateway learns the script as one that changes its session
            // late, and holds its lock to its end from then on).
            $this->lateOpen = false;
            $this->closedByWrite = true;
            if ($this->undoLate()) {
                $this->written[$this->late] = $this->beforeLate;
                $this->current = $this->late;
                $this->send('write', $this->late, $this->beforeLate);
            }
            $this->beforeLate = null;
            $this->late = '';
        }
        if ($this->active !== null && !$this->closedByWrite) {
            $this->send('close', $this->active, '');
        }
        $this->active = null;
        $this->closedByWrite = false;
        return true;
    }

    public function read(string $id): string|false
    {
        $this->vars = &$_SESSION;
        $id = $this->adopt($id);
        // Keys hidden from the script (forScript) belong to the data it
        // holds: session_regenerate_id() keeps that data under a new ID, any
        // other open (session_start after session_destroy) starts afresh.
        if (($this->hidden !== [] || $this->built) && self::phpCaller() !== 'session_regenerate_id') {
            $this->hidden = [];
            $this->built = false;
        }
        $this->active = $id;
        $this->current = $id;
        $this->started = true;
        $this->closedByWrite = false;
        if ($id === $this->gatewayId) {
            $this->exposeCookie();
        }
        if ($this->lateOpen && $id === $this->late && $this->undoLate()) {
            // session_reset() after writeAtShutdown(): the session as it
            // was before that write, as PHP's own handler still has it.
            $data = $this->forScript($this->beforeLate);
        } elseif (isset($this->written[$id])) {
            $data = $this->forScript($this->written[$id]);
        } elseif ($id === $this->gatewayId && $id !== '') {
            $data = $this->forScript($this->loadedData());
        } else {
            if (isset($this->minted[$id])) {
                $this->opened[$id] = true;
                // A new session: the gateway must send its cookie with the
                // headers, which may leave before the data is written. One
                // session_regenerate_id() opened holds the session's data
                // from then on: the gateway moves it there if the headers
                // leave first (docs/protocol.md).
                $this->send('open', $id, self::phpCaller() === 'session_regenerate_id' ? 'regenerate' : '');
            }
            $data = '';
        }
        if ($data !== false) {
            $this->readBack[$id] = $data;
        }
        return $data;
    }

    public function write(string $id, string $data): bool
    {
        $id = $this->canonical($id);
        // PHP writes the session: what writeAtShutdown() sent stands.
        $this->lateOpen = false;
        $this->beforeLate = null;
        if ($id === $this->late && $data === ($this->seen[$id] ?? null)) {
            // The last write of the request (writeAtShutdown): nothing
            // changed since the one the gateway already has.
            $this->closedByWrite = true;
            return true;
        }
        if ($id !== $this->late && $data === ($this->readBack[$id] ?? null) && ini_get('session.lazy_write')
            && self::phpCaller() !== 'session_regenerate_id') {
            // PHP's lazy_write found the session unchanged and, as this
            // handler has no updateTimestamp(), writes it: a touch.
            $this->seen[$id] = $data;
            $this->closedByWrite = true;
            return $this->send('touch', $id, '');
        }
        if ($this->holding && strlen($data) >= self::LARGE && ini_get('session.serialize_handler') === 'php_serialize') {
            // writeAtShutdown() handed its only copy over, and the
            // message is sealed without another one kept meanwhile: the
            // text, the plaintext and the ciphertext are never all held
            // at once, so a large session needs little more of PHP's
            // memory_limit than with PHP's own handler (which keeps the
            // text and $_SESSION at its write). $_SESSION does not change until
            // PHP's final write, so its text comes back from it after.
            unset($this->seen[$id], $this->written[$id], $this->readBack[$id]);
            if ($id === $this->gatewayId) {
                $this->data = '';
            }
            $this->current = $id;
            $this->closedByWrite = true;
            $sent = $this->send('write', $id, self::take($data));
            $data = session_encode();
            if (is_string($data)) {
                $this->seen[$id] = $data;
                $this->written[$id] = $data;
            }
            return $sent;
        }
        $this->seen[$id] = $data;
        $format = (string)ini_get('session.serialize_handler');
        if ($format !== 'php_serialize') {
            // $data is in the script's own format (see forScript); the
            // gateway and every other app read php_serialize. Keys that
            // format could not show the script go back as they were.
            $data = $this->fromScript($data, $format);
        }
        $this->written[$id] = $data;
        // read() and currentData() take the written data from now on: the
        // copies of what read() gave PHP go (the loaded session above all).
        unset($this->readBack[$id]);
        if ($id === $this->gatewayId) {
            $this->data = '';
        }
        $this->current = $id;
        $this->closedByWrite = true;
        return $this->send('write', $id, $data);
    }

    /**
     * The session text $raw (php_serialize, the gateway's format) in the
     * format PHP will decode it with. The gateway sets php_serialize, but a
     * script may ini_set('session.serialize_handler') to PHP's own "php" or
     * "php_binary" before session_start(), as legacy code does (Symfony's
     * NativeSessionStorage sets "php" when php.ini has no value); PHP would
     * then fail to decode the text and destroy the session. Any other
     * handler (igbinary, msgpack) cannot be served: false makes
     * session_start() fail without destroying anything.
     *
     * The text is converted as text: the session's top-level values are
     * cut out and put under the format's names, and no object is built,
     * so PHP's decoder alone calls __wakeup() and __unserialize(), once, as
     * with its files handler (a __wakeup() that opens a database
     * connection opened two per page).
     */
    private function forScript(string $raw): string|false
    {
        $format = (string)ini_get('session.serialize_handler');
        if ($format === 'php_serialize' || $raw === '') {
            return $raw;
        }
        if ($format !== 'php' && $format !== 'php_binary') {
            error_log("sessiongate: session.serialize_handler=$format cannot read the shared session; use php_serialize (the gateway's), php or php_binary", 4);
            return false;
        }
        $entries = self::sessionEntries($raw);
        if ($entries !== null) {
            $shown = [];
            $hidden = [];
            $moves = true;
            foreach ($entries as $i => $entry) {
                if (self::nameable($entry[0], $format)) {
                    $shown[] = $i;
                } else {
                    $hidden[$entry[0]] = $entry[1];
                    // Put back among values the script changed, its own
                    // back-references could name anything.
                    $moves = $moves && $entry[2]['refs'] === [];
                }
            }
            // php_serialize numbers the session array itself first: its
            // first value is the 2nd, where these formats start at the 1st.
            $values = $moves ? self::renumber($entries, 2, $shown, 1) : null;
            if ($values !== null) {
                $this->readOrder = array_column($entries, 0);
                $this->hiddenLog(array_keys($hidden), $format);
                $this->hidden += $hidden;
                $out = '';
                foreach ($shown as $j => $i) {
                    $out .= self::scriptName((string)$entries[$i][0], $format) . $values[$j];
                }
                return $out;
            }
        }
        // A session the text conversion cannot carry: a back-reference to
        // a key hidden from the script (or from one), to the session array
        // itself, or in a Serializable's own payload. Its values are built
        // and PHP's own encoder writes them, which wakes its objects once
        // more.
        $session = unserialize($raw);
        if (!is_array($session)) {
            return false;
        }
        $this->built = true;
        $this->readOrder = array_keys($session);
        $hidden = [];
        foreach (array_keys($session) as $name) {
            if (!self::nameable($name, $format)) {
                $hidden[] = $name;
                $this->hidden[$name] = $session[$name];
                unset($session[$name]);
            }
        }
        $this->hiddenLog($hidden, $format);
        if ($session === []) {
            return '';
        }
        if (!is_array($_SESSION ?? null)) {
            return false;
        }
        // PHP's own encoder, as its decoder reads it: these formats number
        // references (R:, r:) across the whole session, so serialize() of
        // each value alone would point those of every value but the first
        // at other slots, and PHP would fail to decode the session and
        // destroy it. read() runs inside session_start(), with $_SESSION
        // already the session's (empty) array; the script's is put back.
        $before = $_SESSION;
        $_SESSION = $session;
        $out = session_encode();
        $_SESSION = $before;
        return is_string($out) ? $out : false;
    }

    /**
     * The php_serialize text of the session $data that PHP's encoder for
     * $format ("php", "php_binary") made, with the keys hidden from the
     * script back where they were: converted as text, as forScript() does,
     * so that no object's __sleep() or __serialize() runs again.
     */
    private function fromScript(string $data, string $format): string
    {
        if ($data === '' && $format === 'php' && is_array($this->vars)) {
            foreach (array_keys($this->vars) as $name) {
                if (is_string($name) && str_contains($name, '|')) {
                    // PHP's own encoder refuses the whole session then,
                    // without a word, and every handler stores it empty.
                    error_log("sessiongate: the script stored the session key \"$name\", which session.serialize_handler=php cannot hold: PHP encoded the session as empty, and so it is stored", 4);
                    break;
                }
            }
        }
        // The session array serialized whole, which puts its objects to
        // sleep once more: where the text cannot be carried.
        $whole = fn(): string => serialize($this->withHidden(is_array($this->vars) ? $this->vars : []));
        if ($this->built) {
            return $whole();
        }
        $entries = self::scriptEntries($data, $format);
        if ($entries === null) {
            // Not PHP's own encoding (cannot happen): the session array.
            return $whole();
        }
        $byName = [];
        foreach ($entries as $i => $entry) {
            $byName[$entry[0]] = $i;
        }
        $pieces = $this->withHidden($byName);
        $order = [];
        foreach ($pieces as $piece) {
            $order[] = is_int($piece) ? $piece : self::valueEntry($piece);
        }
        $values = self::renumber($entries, 1, $order, 2);
        if ($values === null) {
            return $whole();
        }
        $out = 'a:' . count($pieces) . ':{';
        $j = 0;
        foreach (array_keys($pieces) as $name) {
            $out .= (is_int($name) ? 'i:' . $name . ';' : 's:' . strlen($name) . ':"' . $name . '";') . $values[$j++];
        }
        return $out . '}';
    }

    /** What the session's text conversion records of a session key: what
     * the script's format can name. What it cannot, PHP's own encoders
     * skip too: an integer key, a '|' (php), over 127 bytes (php_binary). */
    private static function nameable(int|string $name, string $format): bool
    {
        return !is_int($name) && ($format === 'php' ? !str_contains($name, '|') : strlen($name) <= 127);
    }

    /** @param list<int|string> $names */
    private function hiddenLog(array $names, string $format): void
    {
        foreach ($names as $name) {
            error_log("sessiongate: session key \"$name\" cannot be read with session.serialize_handler=$format; hidden from this script and kept", 4);
        }
    }

    /** $name as the format $format ("php", "php_binary") puts it before its value. */
    private static function scriptName(string $name, string $format): string
    {
        return $format === 'php' ? $name . '|' : chr(strlen($name)) . $name;
    }

    /**
     * The top-level entries of the php_serialize text $raw: for each,
     * [key as unserialize() makes it, value text, its scan (scanValue)],
     * null when the text is not the array serialize() makes.
     *
     * @return list<array{0: int|string, 1: string, 2: array}>|null
     */
    private static function sessionEntries(string $raw): ?array
    {
        if (!preg_match('/\Aa:(\d{1,18}):\{/', $raw, $m)) {
            return null;
        }
        $p = strlen($m[0]);
        $out = [];
        for ($n = (int)$m[1]; $n > 0; $n--) {
            $t = $raw[$p] ?? '';
            $k = $t === 's' || $t === 'i' ? self::skipValue($raw, $p, 0) : -1;
            if ($k < 0) {
                return null;
            }
            if ($t === 'i') {
                $name = (int)substr($raw, $p + 2, $k - $p - 3);
            } else {
                $q = strpos($raw, ':', $p + 2);
                $name = substr($raw, $q + 2, $k - $q - 4);
                // unserialize() makes a decimal integer's text an integer key.
                if ((string)(int)$name === $name) {
                    $name = (int)$name;
                }
            }
            $entry = self::entryAt($raw, $k, $name);
            if ($entry === null) {
                return null;
            }
            [$out[], $p] = $entry;
        }
        return $p + 1 === strlen($raw) && $raw[$p] === '}' ? $out : null;
    }

    /**
     * The entries of the session text $data in PHP's format $format
     * ("php": name|value..., "php_binary": a length byte, name, value...),
     * as sessionEntries() gives them; null when the text is not one.
     *
     * @return list<array{0: string, 1: string, 2: array}>|null
     */
    private static function scriptEntries(string $data, string $format): ?array
    {
        $out = [];
        $p = 0;
        $end = strlen($data);
        while ($p < $end) {
            if ($format === 'php') {
                $q = strpos($data, '|', $p);
                if ($q === false) {
                    return null;
                }
                $name = substr($data, $p, $q - $p);
                $k = $q + 1;
            } else {
                $len = ord($data[$p]);
                if ($len > 127) {
                    return null;
                }
                $name = (string)substr($data, $p + 1, $len);
                $k = $p + 1 + $len;
            }
            $entry = self::entryAt($data, $k, $name);
            if ($entry === null) {
                return null;
            }
            [$out[], $p] = $entry;
        }
        return $out;
    }

    /** A value text of its own (a hidden key's) as an entry for renumber(), null if it is none. */
    private static function valueEntry(string $text): ?array
    {
        $entry = self::entryAt($text, 0, '');
        return $entry !== null && $entry[1] === strlen($text) ? $entry[0] : null;
    }

    /**
     * The entry (as sessionEntries() gives them) of the value at $k of $s,
     * named $name, and the offset just past the value; null if no value
     * starts there.
     *
     * @return array{0: array{0: int|string, 1: string, 2: array}, 1: int}|null
     */
    private static function entryAt(string $s, int $k, int|string $name): ?array
    {
        $scan = self::newScan();
        $v = self::scanValue($s, $k, 0, $scan);
        if ($v < 0) {
            return null;
        }
        return [[$name, substr($s, $k, $v - $k), self::shiftScan($scan, $k)], $v];
    }

    /**
     * The values of a new session text, each renumbered for its place in
     * it. Serialized text numbers its values (all but an R:) in the order
     * they come, across the whole session, and a back-reference (r:n;,
     * R:n;) names a value by that number: moving values to another text
     * moves their numbers. $entries are the values of the old text, the
     * first numbered $from; $order the new text's values, the first
     * numbered $to: an index into $entries, or an entry of its own
     * (valueEntry) that must hold no back-reference. Null when a number
     * cannot be kept: it names a value the new text does not hold (or the
     * session array), or a Serializable's payload hides how many values
     * come before it.
     *
     * @param list<array{0: int|string, 1: string, 2: array}> $entries
     * @param list<int|array|null> $order
     * @return list<string>|null
     */
    private static function renumber(array $entries, int $from, array $order, int $to): ?array
    {
        $opaque = false;
        $refs = false;
        $starts = [];
        $at = $from;
        foreach ($entries as $i => $entry) {
            $starts[$i] = $at;
            $at += $entry[2]['slots'];
            $opaque = $opaque || $entry[2]['opaque'];
            $refs = $refs || $entry[2]['refs'] !== [];
        }
        $moved = [];
        $at = $to;
        foreach ($order as $piece) {
            if ($piece === null || (is_array($piece) && $piece[2]['refs'] !== [])) {
                return null;
            }
            if (is_int($piece)) {
                $moved[$piece] = $at;
            }
            $entry = is_int($piece) ? $entries[$piece] : $piece;
            $at += $entry[2]['slots'];
            $opaque = $opaque || $entry[2]['opaque'];
        }
        if ($opaque && $refs) {
            return null;
        }
        $out = [];
        foreach ($order as $piece) {
            if (!is_int($piece)) {
                $out[] = $piece[1];
                continue;
            }
            $text = $entries[$piece][1];
            // From the end, so that the offsets before stay right.
            foreach (array_reverse($entries[$piece][2]['refs']) as [$offset, $length, $number]) {
                $target = null;
                foreach ($starts as $i => $start) {
                    if ($number >= $start && $number < $start + $entries[$i][2]['slots']) {
                        $target = $i;
                        break;
                    }
                }
                if ($target === null || !isset($moved[$target])) {
                    return null;
                }
                $text = substr_replace($text, (string)($moved[$target] + $number - $starts[$target]), $offset, $length);
            }
            $out[] = $text;
        }
        return $out;
    }

    /** @return array{slots: int, refs: list<array{int, int, int}>, opaque: bool} */
    private static function newScan(): array
    {
        return ['slots' => 0, 'refs' => [], 'opaque' => false];
    }

    /** $scan with its offsets taken from $at on. */
    private static function shiftScan(array $scan, int $at): array
    {
        foreach ($scan['refs'] as &$ref) {
            $ref[0] -= $at;
        }
        return $scan;
    }

    /**
     * skipValue() that also counts into $scan the values unserialize()
     * numbers (each but an R:), and records each back-reference as [the
     * offset of its number, the number's length, the number]. A
     * Serializable's payload (C:) that is serialize() text is counted as
     * its unserialize() would number it; one that holds a back-reference
     * (or what may be one) gets the number 0, which no value has: it
     * cannot be renumbered, its length being in the payload's header. One
     * that is not serialize() text makes the numbering after it unknown
     * ('opaque').
     */
    private static function scanValue(string $s, int $p, int $depth, array &$scan): int
    {
        $t = $s[$p] ?? '';
        if ($t !== 'R') {
            $scan['slots']++;
        }
        switch ($t) {
            case 'r':
            case 'R':
                $e = strpos($s, ';', $p);
                $number = $e === false ? '' : substr($s, $p + 2, $e - $p - 2);
                if (($s[$p + 1] ?? '') !== ':' || !self::isDigits($number) || strlen($number) > 18) {
                    return -1;
                }
                $scan['refs'][] = [$p + 2, strlen($number), (int)$number];
                return $e + 1;
            case 'a':
            case 'O':
            case 'C':
                break;
            default:
                return self::skipValue($s, $p, $depth);
        }
        if (($s[$p + 1] ?? '') !== ':' || $depth > 4096) {
            return -1;
        }
        [$p, $count] = self::openContainer($s, $p + 2, $t);
        if ($p < 0) {
            return -1;
        }
        if ($t === 'C') {
            $end = $p + $count;
            if (($s[$end] ?? '') !== '}') {
                return -1;
            }
            $inner = self::newScan();
            if ($end > $p && self::scanValue($s, $p, $depth + 1, $inner) === $end) {
                $scan['slots'] += $inner['slots'];
                $scan['opaque'] = $scan['opaque'] || $inner['opaque'];
                if ($inner['refs'] !== []) {
                    $scan['refs'][] = [$p, 0, 0];
                }
            } else {
                $scan['opaque'] = true;
                if (preg_match('/[rR]:\d+;/', substr($s, $p, $end - $p))) {
                    $scan['refs'][] = [$p, 0, 0];
                }
            }
            return $end + 1;
        }
        for ($i = $count; $i > 0 && $p >= 0; $i--) {
            $p = self::skipValue($s, $p, $depth + 1); // a key: not numbered
            $p = $p < 0 ? -1 : self::scanValue($s, $p, $depth + 1, $scan);
        }
        return $p >= 0 && ($s[$p] ?? '') === '}' ? $p + 1 : -1;
    }

    /**
     * $session with the keys hidden from the script (forScript) put back
     * where they were in the session read: after the nearest key before
     * them that the script kept. Every app keeps the session's member
     * order, so a script that did not touch them must not move them to
     * the end. A kept key that is a PHP reference stays one (taken by
     * reference); the others are copied, as taking them by reference too
     * would turn an object under two keys (r:) into a reference (R:).
     */
    private function withHidden(array $session): array
    {
        if ($this->hidden === []) {
            return $session;
        }
        $first = [];
        $after = [];
        $at = null;
        foreach ($this->readOrder as $key) {
            if (array_key_exists($key, $this->hidden)) {
                if (!array_key_exists($key, $session)) {
                    if ($at === null) {
                        $first[] = $key;
                    } else {
                        $after[$at][] = $key;
                    }
                }
            } elseif (array_key_exists($key, $session)) {
                $at = $key;
            }
        }
        $out = [];
        foreach ($first as $name) {
            $out[$name] = $this->hidden[$name];
        }
        foreach (array_keys($session) as $key) {
            if (ReflectionReference::fromArrayElement($session, $key) !== null) {
                $out[$key] = &$session[$key];
            } else {
                $out[$key] = $session[$key];
            }
            foreach ($after[$key] ?? [] as $name) {
                $out[$name] = $this->hidden[$name];
            }
        }
        foreach ($this->hidden as $name => $value) {
            if (!array_key_exists($name, $out)) {
                $out[$name] = $value;
            }
        }
        return $out;
    }

    public function destroy(string $id): bool
    {
        $caller = self::phpCaller();
        if ($caller === 'session_start' || $caller === 'session_reset') {
            // No script asks this: PHP destroys a session it failed to
            // decode ("Failed to decode session object"), which with data
            // the gateway checked means a value this script cannot
            // restore: an enum it does not have (another application's,
            // or one autoloaded only after session_start()), or a case a
            // deploy renamed or removed (an object of a class it lacks
            // decodes, as __PHP_Incomplete_Class). PHP's own warning says
            // which, and comes before this call: it is passed on. The
            // session is every application's here, the user's login
            // (Django's) included: it stays, and is only closed. The
            // script gets what PHP gives it then, no session.
            $why = error_get_last()['message'] ?? '';
            error_log('sessiongate: PHP could not decode the shared session (it holds a value this script cannot restore, such as an enum, or an enum case, it does not define or autoload before session_start()' . ($why !== '' ? '; PHP: ' . $why : '') . ') and would destroy it; it is kept for the applications that can read it, and this script runs without a session', 4);
            return true;
        }
        $id = $this->canonical($id);
        $this->lateOpen = false;
        $this->beforeLate = null;
        // The ID that stood for it names nothing now: PHP reads it again
        // from its cookie at a session_start() after session_destroy().
        $this->alias = array_filter($this->alias, static fn(string $to): bool => $to !== $id);
        unset($this->written[$id]);
        if ($id === $this->gatewayId) {
            $this->gatewayId = '';
        }
        if ($id === $this->current) {
            $this->current = '';
        }
        $this->closedByWrite = true;
        // session_regenerate_id(true) moves the session to a new ID: the
        // gateway then keeps a tombstone under the old one, so a request
        // the browser sent with the old cookie meanwhile does not replace
        // the new cookie (docs/protocol.md). A gateway that predates it
        // ignores the payload.
        return $this->send('destroy', $id, self::phpCaller() === 'session_regenerate_id' ? 'regenerate' : '');
    }

    /**
     * Writes the active session now, while the headers can still carry it,
     * and leaves it open, so that PHP writes it once more when it shuts the
     * request down. PHP writes a session after the script's object
     * destructors and the shutdown functions registered during shutdown
     * (its files handler saves a cart object's __destruct), but the
     * end-of-request write must happen before them. The second write sends
     * only a change from the first; the gateway keeps the session locked
     * in between (the "hold" messages). The session is not closed and opened
     * again: a new session_start() would give $_SESSION a new reference,
     * and an object that holds one to the whole $_SESSION (Kohana's
     * session: $this->_data =& $_SESSION) would change an array PHP no
     * longer writes.
     */
    public function writeAtShutdown(): void
    {
        $named = (string)session_id();
        $id = $this->canonical($named);
        if ($this->nonce === '' || $id === '' || !is_array($_SESSION ?? null)) {
            return; // PHP's own write at the end decides, as it would
        }
        $data = session_encode();
        if (!is_string($data)) {
            return; // PHP's own write at the end meets the same trouble
        }
        // What session_abort() or session_reset() after this write go
        // back to (lateOpen). Not a session from LARGE on: write() lets
        // such a text go to stay within PHP's memory_limit.
        $before = $this->written[$id] ?? ($id === $this->gatewayId ? $this->loadedData() : '');
        // To a gateway that takes it, the write keeps the session's lock
        // (strict mode) until PHP's final write or the end of the request,
        // as PHP's files handler keeps its lock: another request of the
        // session must not read it before a destructor's change.
        $this->holding = true;
        try {
            $this->write($named, self::take($data));
        } finally {
            $this->holding = false;
        }
        $this->late = $id;
        // A touch (nothing changed) leaves nothing to undo.
        $this->lateOpen = isset($this->written[$id]) && $this->written[$id] !== $before;
        $this->beforeLate = $this->lateOpen && strlen($before) < self::LARGE ? $before : null;
    }

    /**
     * Whether the change writeAtShutdown() sent can be undone (beforeLate
     * held); if not, the log says that it stays.
     */
    private function undoLate(): bool
    {
        if ($this->beforeLate !== null) {
            return true;
        }
        error_log('sessiongate: session_abort() or session_reset() after the end of the script (a destructor, a late shutdown function, an output callback) of a session of 1 MiB or more: the change the script made before stays stored', 4);
        return false;
    }

    /**
     * The active session is this handler's: the script did not replace it
     * with one of its own (session_set_save_handler() before
     * session_start()). PHP writes a session of the script's own handler
     * itself, after the object destructors, as it would without the gateway.
     */
    public function holdsSession(): bool
    {
        return $this->active !== null;
    }

    /**
     * sessiongate_release(): the user's other requests go on now, as after
     * session_start(['read_and_close' => true]), but PHP's session is not
     * started, so session_id() stays "" and code that starts the session
     * only when it finds none (if (!session_id()) session_start(), common
     * in WordPress plugins) still starts it, and its changes are saved (the
     * gateway locks again to write them). A session the script has open
     * is closed (session_write_close()).
     */
    public function release(): void
    {
        if (session_status() === PHP_SESSION_ACTIVE && $this->holdsSession()) {
            session_write_close();
            return;
        }
        if ($this->gatewayId === '' || $this->started || $this->releasedUnstarted) {
            // No session, or the script opened it already: its close()
            // let the lock go.
            return;
        }
        $this->releasedUnstarted = true;
        $this->send('close', $this->gatewayId, '');
    }

    public function gc(int $max_lifetime): int|false
    {
        return 0; // expiry is the gateway's job
    }

    public function create_sid(): string
    {
        if (!$this->isOpen) {
            // The application's own handler asks (see the class comment):
            // PHP's own ID, never the gateway's, whose cookie would not
            // reach the browser.
            return self::phpSessionId();
        }
        // The gateway's session reaches PHP here, not through session_id()
        // before the script runs: with PHP's files handler session_id() is
        // "" until session_start() (the ID comes from the cookie then), and
        // scripts test `if (!session_id()) session_start();`. So the first
        // session_start() of the request, which asks for an ID because it
        // has none (or refused the client's own stale PHPSESSID), gets the
        // gateway's. session_create_id() and session_regenerate_id() always
        // get a new one, as does a session_start() after session_destroy()
        // or one whose ID the script chose and validateId() refused.
        $named = $this->namedRefused;
        $this->namedRefused = false;
        if (!$this->started && $this->gatewayId !== '' && !$named
            && self::phpCaller() === 'session_start') {
            return $this->gatewayId;
        }
        return $this->mint();
    }

    /**
     * Sends what session_start() sends for PHP's session.cache_limiter
     * (nocache by default: no-store, and an Expires long past), for a
     * script that reads the session without starting it
     * (sessiongate_user_id()). Behind nginx a page could only read the
     * session through session_start(); without these headers a page naming
     * the user went out heuristically cacheable, and a shared cache that
     * keys on the URL alone (a CDN's "cache everything" rule) served one
     * user's page to everyone. Like session_start(), nothing once headers
     * are sent or with an empty limiter; unlike it, nothing when the script
     * has set a Cache-Control of its own, which it did on purpose (where
     * session_start() runs first and the script's own header then replaces
     * the limiter's).
     */
    public static function sendCacheLimiter(): void
    {
        if (headers_sent()) {
            return;
        }
        foreach (headers_list() as $line) {
            if (strncasecmp($line, 'Cache-Control:', 14) === 0) {
                return;
            }
        }
        $maxAge = 60 * (int)ini_get('session.cache_expire');
        $lastModified = static function (): void {
            $script = $_SERVER['SCRIPT_FILENAME'] ?? '';
            $mtime = is_string($script) && $script !== '' ? @filemtime($script) : false;
            if ($mtime !== false) {
                header('Last-Modified: ' . gmdate('D, d M Y H:i:s', $mtime) . ' GMT');
            }
        };
        switch (strtolower((string)ini_get('session.cache_limiter'))) {
            case 'nocache':
                header('Expires: Thu, 19 Nov 1981 08:52:00 GMT');
                header('Cache-Control: no-store, no-cache, must-revalidate');
                header('Pragma: no-cache');
                break;
            case 'private':
                header('Expires: Thu, 19 Nov 1981 08:52:00 GMT');
                header('Cache-Control: private, max-age=' . $maxAge);
                $lastModified();
                break;
            case 'private_no_expire':
                header('Cache-Control: private, max-age=' . $maxAge);
                $lastModified();
                break;
            case 'public':
                header('Expires: ' . gmdate('D, d M Y H:i:s', time() + $maxAge) . ' GMT');
                header('Cache-Control: public, max-age=' . $maxAge);
                $lastModified();
                break;
        }
    }

    /**
     * The string or integer stored under the top-level key $name of the
     * php_serialize text $raw, or null (absent, another type, malformed),
     * found without building any other value of the session.
     */
    public static function topLevelScalar(string $raw, string $name): string|int|null
    {
        if (!preg_match('/\Aa:(\d{1,18}):\{/', $raw, $m)) {
            return null;
        }
        $p = strlen($m[0]);
        for ($n = (int)$m[1]; $n > 0; $n--) {
            if (($raw[$p] ?? '') !== 's' && ($raw[$p] ?? '') !== 'i') {
                return null;
            }
            $k = self::skipValue($raw, $p, 0);
            $v = $k < 0 ? -1 : self::skipValue($raw, $k, 0);
            if ($v < 0) {
                return null;
            }
            // An array key or a string or integer value: unserialize()
            // builds nothing else from these tokens.
            if (@unserialize(substr($raw, $p, $k - $p)) === $name) {
                $t = $raw[$k];
                return $t === 's' || $t === 'i' ? @unserialize(substr($raw, $k, $v - $k)) : null;
            }
            $p = $v;
        }
        return null;
    }

    /** The offset just past the serialize() value at $p of $s, -1 if malformed. */
    private static function skipValue(string $s, int $p, int $depth): int
    {
        $t = $s[$p] ?? '';
        if ($t === 'N') {
            return ($s[$p + 1] ?? '') === ';' ? $p + 2 : -1;
        }
        if (($s[$p + 1] ?? '') !== ':' || $depth > 4096) {
            return -1;
        }
        $p += 2;
        switch ($t) {
            case 'b':
            case 'i':
            case 'd':
            case 'r':
            case 'R':
                $e = strpos($s, ';', $p);
                return $e === false ? -1 : $e + 1;
            case 's':
            case 'E':
                $e = self::skipQuoted($s, $p);
                return $e >= 0 && ($s[$e] ?? '') === ';' ? $e + 1 : -1;
            case 'a':
            case 'O':
            case 'C':
                [$p, $count] = self::openContainer($s, $p, $t);
                if ($p < 0) {
                    return -1;
                }
                if ($t === 'C') {
                    // A Serializable's payload: that many bytes.
                    $p += $count;
                    return ($s[$p] ?? '') === '}' ? $p + 1 : -1;
                }
                for ($i = $count; $i > 0 && $p >= 0; $i--) {
                    $p = self::skipValue($s, $p, $depth + 1);
                    $p = $p < 0 ? -1 : self::skipValue($s, $p, $depth + 1);
                }
                return $p >= 0 && ($s[$p] ?? '') === '}' ? $p + 1 : -1;
        }
        return -1;
    }

    /**
     * At the text of $s after an array's, object's or Serializable's
     * `a:`, `O:` or `C:` ($t: a, O or C): [the offset past its opening
     * brace, its count (members, or the Serializable's payload bytes)],
     * or [-1, 0] if malformed.
     */
    private static function openContainer(string $s, int $p, string $t): array
    {
        if ($t !== 'a') {
            // The class name and its ':'.
            $p = self::skipQuoted($s, $p);
            if ($p < 0 || ($s[$p] ?? '') !== ':') {
                return [-1, 0];
            }
            $p++;
        }
        $c = strpos($s, ':', $p);
        $count = $c === false ? '' : substr($s, $p, $c - $p);
        if (!self::isDigits($count) || strlen($count) > 18 || ($s[$c + 1] ?? '') !== '{') {
            return [-1, 0];
        }
        return [$c + 2, (int)$count];
    }

    /** $s is a decimal number's digits (ctype_digit(), which PHP may be built without). */
    private static function isDigits(string $s): bool
    {
        return $s !== '' && strspn($s, '0123456789') === strlen($s);
    }

    /** At `<len>:"<len bytes>"` of $s: the offset past the closing quote, -1 if malformed. */
    private static function skipQuoted(string $s, int $p): int
    {
        $c = strpos($s, ':', $p);
        $len = $c === false ? '' : substr($s, $p, $c - $p);
        if (!self::isDigits($len) || strlen($len) > 18 || ($s[$c + 1] ?? '') !== '"') {
            return -1;
        }
        $e = $c + 2 + (int)$len;
        return ($s[$e] ?? '') === '"' ? $e + 1 : -1;
    }

    /**
     * The PHP function that called the handler method now running
     * (session_start, session_regenerate_id, ...), '' when none: PHP asks
     * the handler the same questions for different reasons.
     */
    private static function phpCaller(): string
    {
        return debug_backtrace(DEBUG_BACKTRACE_IGNORE_ARGS, 3)[2]['function'] ?? '';
    }

    /** $v's value, which $v no longer holds: a large string handed on
     * without a second reference to it (see write()). */
    private static function take(string &$v): string
    {
        $out = $v;
        $v = '';
        return $out;
    }

    /** A new ID as PHP makes one for a handler without create_sid. */
    private static function phpSessionId(): string
    {
        $bits = min(6, max(4, (int)(ini_get('session.sid_bits_per_character') ?: 4)));
        $chars = substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,-', 0, 1 << $bits);
        $id = '';
        for ($n = max(22, (int)(ini_get('session.sid_length') ?: 32)); $n > 0; $n--) {
            $id .= $chars[random_int(0, strlen($chars) - 1)];
        }
        return $id;
    }

    private function mint(): string
    {
        $id = bin2hex(random_bytes(32));
        $this->minted[$id] = true;
        return $id;
    }

    /** The session ID that $id, as PHP names the session, stands for. */
    private function canonical(string $id): string
    {
        return $this->alias[$id] ?? $id;
    }

    /**
     * The session ID that read($id) opens. PHP takes an ID without asking
     * the handler when the script turned session.use_strict_mode off
     * (daloRADIUS does before every session_start(), as does code that
     * follows the PHP manual's custom regeneration): the one its own cookie
     * names, which the client chose (a PHPSESSID left from before the
     * gateway, from another PHP site on the domain, or planted), or one the
     * script named with session_id(). Such an ID is no session of the
     * gateway's; it stands for the one create_sid() would have given, so
     * the script keeps the request's session and the client's choice of ID
     * is never stored. session_id() still shows the script PHP's ID.
     */
    private function adopt(string $id): string
    {
        if ($this->nonce !== '' && $id !== '' && !isset($this->alias[$id]) && $id !== $this->gatewayId
            && !isset($this->minted[$id]) && !isset($this->written[$id])) {
            $this->alias[$id] = !$this->started && $this->gatewayId !== '' ? $this->gatewayId : $this->mint();
        }
        return $this->canonical($id);
    }

    public function validateId(string $id): bool
    {
        if (!$this->isOpen) {
            // The application's own handler, which has no validate_sid:
            // PHP would take any ID as it comes and check no new one, so
            // session_start() keeps the application's ID and
            // session_regenerate_id() gets its new one at once.
            // The gateway's ID that exposeCookie() put where PHP looks for
            // the session cookie is refused: the application gets an ID of
            // its own and its cookie, as behind nginx.
            $caller = self::phpCaller();
            return $caller !== 'session_regenerate_id' && $caller !== 'session_create_id'
                && ($id !== $this->exposed || $id === '');
        }
        // session.use_strict_mode: only the gateway's ID or ours are valid,
        // so session_id('chosen-by-attacker') cannot fixate a session.
        // PHP asks "does this session exist?": also to detect collisions of
        // an ID create_sid() just returned (session_create_id(),
        // session_regenerate_id()), so an ID minted here counts only once a
        // session was opened with it, as a files handler's would once its
        // file exists. Otherwise session_create_id() in an active session
        // always "collides" and returns false with a warning.
        $named = $id;
        $id = $this->canonical($id);
        if (($id !== '' && $id === $this->gatewayId) || isset($this->opened[$id])) {
            return true;
        }
        if ($named !== '' && self::phpCaller() === 'session_start'
            && !isset($this->minted[$id]) && $named !== $this->exposed
            && !in_array($named, $this->clientCookies, true)) {
            // Not the client's cookie (a PHPSESSID left from before the
            // gateway is refused the same way, and is no news), nor the
            // gateway's ID exposeCookie() put in $_COOKIE (PHP takes it
            // from there again at a session_start() after
            // session_destroy(), a logout page's fresh session), nor an ID
            // session_create_id() gave: the script chose the ID with
            // session_id(). Code that finds sessions by
            // IDs it computes, such as phpCAS's single logout, then works
            // on an empty session and fails without a word. It gets a new
            // session, as from PHP's files handler in strict mode: the
            // visitor's own is not the session it named (an admin page
            // that ends a user's session by its ID would end the admin's).
            // The ID itself stays out of the log.
            $this->namedRefused = true;
            if ($this->warnedNamedId) {
                return false;
            }
            $this->warnedNamedId = true;
            error_log('sessiongate: session_start() with an ID the script chose (session_id()) that the gateway did not mint: PHP starts a new, empty session instead. Code that finds sessions by IDs it computes (phpCAS single logout) does not work behind the gateway; see README, "The gateway mints every session ID"', 4);
        }
        return false;
    }

    private function send(string $op, string $id, string $payload): bool
    {
        if ($this->nonce === '') {
            return false;
        }
        if ($this->holding && $this->canHold && ($op === 'write' || $op === 'touch')) {
            // writeAtShutdown(): PHP may change the session after it, and
            // the gateway keeps the lock for that (docs/protocol.md).
            $op .= '-hold';
        }
        $iv = random_bytes(12);
        $tag = '';
        // A session of megabytes is held as few times as it can be (PHP's
        // memory_limit): the plaintext goes as soon as it is sealed, and
        // the base64 text is made frame by frame, never whole, for stderr.
        $plain = $op . "\n" . $id . "\n" . $payload;
        unset($payload); // this copy; the caller's is its own
        $sealed = openssl_encrypt($plain, 'aes-256-gcm', $this->key, OPENSSL_RAW_DATA, $iv, $tag, '', 16);
        unset($plain);
        if ($sealed === false) {
            return false;
        }
        $head = $iv . $tag;
        $textLen = intdiv(strlen($head) + strlen($sealed) + 2, 3) * 4;
        $inHeader = ($this->finishing || $this->noStderr) && $textLen <= self::FRAME_HEADER_MAX && !headers_sent();
        if (!$inHeader && $this->noStderr) {
            // PHP's own warning (the write failed) tells the script; the
            // gateway heard of fastcgi.logging from the install (a header).
            error_log("sessiongate: session $op not sent: fastcgi.logging is off, so nothing PHP sends once its output started reaches the gateway; set php_admin_value[fastcgi.logging] = 1 in the pool", 4);
            return false;
        }
        // Every frame is "@sg1:<nonce>:<seq>:<last 0|1>:<chunk>#".
        $prefix = '@sg1:' . $this->nonce . ':' . $this->seq++ . ':';
        if ($inHeader) {
            // The request is ending (or stderr does not reach the gateway)
            // and its headers are still in PHP's buffer: the message rides
            // in a response header, which the gateway reads before anything
            // reaches the client. One frame, no log_limit to respect, and
            // nothing passes through php-fpm's log pipe.
            header(self::FRAME_HEADER . ': ' . $prefix . '1:' . base64_encode($head . $sealed) . '#', false);
            return true;
        }
        // Frames of CHUNK base64 characters: the base64 of consecutive
        // pieces of RAW bytes (a multiple of 3) is the base64 of the whole.
        $raw = self::CHUNK / 4 * 3;
        $first = $head . substr($sealed, 0, $raw - strlen($head));
        $at = $raw - strlen($head);
        $total = strlen($sealed);
        error_log($prefix . ($at >= $total ? '1' : '0') . ':' . base64_encode($first) . '#', 4);
        unset($first);
        while ($at < $total) {
            $chunk = base64_encode(substr($sealed, $at, $raw));
            $at += $raw;
            error_log($prefix . ($at >= $total ? '1' : '0') . ':' . $chunk . '#', 4);
        }
        // php-fpm holds stderr in its buffer until a flush; this sends the
        // frames now (without sending headers), so the gateway can release
        // the session lock at once. Not when the request is ending (after
        // output started): the frames then leave in the same write as the
        // response, and a separate small write would wait for a delayed
        // TCP ACK (40 ms). Nor for an open (a new session, a new ID), which
        // frees nothing: sent early, it made the response's own write wait
        // for that ACK on every first visit and login.
        if (!$this->finishing && $op !== 'open') {
            flush();
        }
        return true;
    }
}

/**
 * The Django user id of the logged-in user (Django's `_auth_user_id`), or
 * null: also when a password change in Django ended the session's login.
 * Works whether or not the script started the session.
 */
function sessiongate_user_id(): ?string
{
    $h = $GLOBALS['__sessiongate_handler'] ?? null;
    // $_SESSION is the shared session only while the gateway's handler has
    // it open: an application with a handler of its own (MediaWiki) keeps
    // its own session there.
    if (session_status() === PHP_SESSION_ACTIVE && (!($h instanceof SessiongateSessionHandler) || $h->holdsSession())) {
        $id = $_SESSION['_auth_user_id'] ?? null;
        $hash = $_SESSION['_auth_user_hash'] ?? null;
    } else {
        // The session as the script left it (written, destroyed,
        // regenerated), not necessarily as the request found it.
        $raw = $h instanceof SessiongateSessionHandler ? $h->currentData() : '';
        $data = $raw === '' ? [] : @unserialize($raw, ['allowed_classes' => false]);
        // unserialize() fails on the whole session when it holds an enum
        // of a class this script does not have (another application's):
        // the key is then read without building any other value.
        $id = is_array($data) ? ($data['_auth_user_id'] ?? null)
            : SessiongateSessionHandler::topLevelScalar($raw, '_auth_user_id');
        $hash = is_array($data) ? ($data['_auth_user_hash'] ?? null)
            : SessiongateSessionHandler::topLevelScalar($raw, '_auth_user_hash');
        // The page now depends on the session, as a session_start() that
        // read it would have made it: its cache headers too.
        SessiongateSessionHandler::sendCacheLimiter();
    }
    if ($id === null || $id === '') {
        return null;
    }
    // A password change in Django ended this login: Django logs the
    // session out at its next Django page, and until then PHP names nobody
    // either (a stolen session is over on every page at once).
    $revoked = $h instanceof SessiongateSessionHandler ? $h->revokedLogin() : '';
    if ($revoked !== '' && is_scalar($hash) && (string)$hash === $revoked) {
        return null;
    }
    return (string)$id;
}

/**
 * Lets the user's other requests go on now: a page that is slow, or that
 * keeps a session of its own (Laravel, Symfony, MediaWiki), holds the
 * gateway's session lock until it ends otherwise. Unlike
 * session_start(['read_and_close' => true]) it starts no session, so
 * session_id() stays "" and a later session_start() works as usual (its
 * changes are saved). A session the script has open is closed.
 */
function sessiongate_release(): void
{
    $h = $GLOBALS['__sessiongate_handler'] ?? null;
    if ($h instanceof SessiongateSessionHandler) {
        $h->release();
    }
}

(static function (): void {
    // Internal params are the gateway's business: the handler takes what it
    // needs, the application's $_SERVER does not carry them (the frame key
    // above all), also when no handler could be installed. Nor does $_ENV,
    // where php-fpm copies every FastCGI param too when variables_order
    // holds "E" (PHP's built-in "EGPCS", as without a php.ini): phpinfo()
    // and error pages (Whoops, Symfony's) print it. Naming $_ENV here also
    // makes PHP build it now (auto_globals_jit), not later with the params
    // in it. getenv() still answers for them in php-fpm, which reads its
    // FastCGI params there; nothing a script can do removes them.
    $server = [];
    foreach (array_keys($_SERVER) as $k) {
        if (is_string($k) && strncmp($k, 'SESSIONGATE_', 12) === 0) {
            $server[$k] = $_SERVER[$k];
            unset($_SERVER[$k]);
        }
    }
    foreach (array_keys($_ENV) as $k) {
        if (is_string($k) && strncmp($k, 'SESSIONGATE_', 12) === 0) {
            unset($_ENV[$k]);
        }
    }
    if (($server['SESSIONGATE_NONCE'] ?? '') !== '') {
        // The gateway's sign that this file ran: without it the gateway
        // logs that PHP keeps sessions of its own (a pool without the
        // auto_prepend_file line, a .user.ini naming another file). Set
        // again as the headers leave, for a script that clears them all
        // with header_remove().
        if (headers_sent($file, $line)) {
            error_log("sessiongate: output started before the gateway's prepend ran (in $file on line $line): the session cookie cannot be sent; require the prepend before anything that prints", 4);
        } else {
            header('X-Sessiongate-Prepend: 1');
            header_register_callback(static function (): void {
                header('X-Sessiongate-Prepend: 1');
            });
        }
    }
    // session.auto_start (php.ini, the pool): PHP started its session
    // before this file ran, with its own handler, and a legacy application
    // that never calls session_start() counts on it. That session is let go
    // (a new one's file removed, so that its files handler does not leave
    // an empty file per visit, a visitor's own left as it was) with the
    // cookie PHP queued for it, and the gateway's session started in its
    // place below, once the handler is in. PHP's own start fails instead
    // where its save_path cannot be written, with its own warnings, as it
    // would without the gateway.
    $autoStart = filter_var(ini_get('session.auto_start'), FILTER_VALIDATE_BOOLEAN);
    if (session_status() === PHP_SESSION_ACTIVE) {
        if (($_COOKIE[session_name()] ?? null) === session_id()) {
            session_abort();
        } else {
            session_destroy();
        }
        session_id('');
    }
    if ($autoStart && !headers_sent()) {
        // Also from a start that failed (it sends the cookie first).
        $name = (string)session_name();
        $cookies = array_filter(headers_list(), static fn(string $h): bool => strncasecmp($h, 'Set-Cookie:', 11) === 0);
        header_remove('Set-Cookie');
        foreach ($cookies as $cookie) {
            if (!str_starts_with(ltrim(substr($cookie, 11)), $name . '=')) {
                header($cookie, false);
            }
        }
    }
    // Where the gateway's handler cannot be installed, PHP's own session
    // is started again, as auto_start would have it.
    $ownAutoStart = static function () use ($autoStart): void {
        if ($autoStart && session_status() === PHP_SESSION_NONE) {
            session_start();
        }
    };
    // The same settings the gateway sends in PHP_VALUE, for pools that load
    // this file with php_admin_value[auto_prepend_file] instead. Such a
    // pool that also fixes one of them with php_admin_value keeps it, and
    // PHP says nothing: it then warns at every session_set_cookie_params()
    // (use_cookies off) or rewrites links (use_trans_sid), and the operator
    // reads the cause here. (The gateway's PHP_VALUE overrides the pool.)
    $pinned = [];
    try {
        foreach ([
            'session.serialize_handler' => 'php_serialize',
            'session.use_cookies' => '1',
            'session.use_only_cookies' => '1',
            'session.use_trans_sid' => '0',
            'session.use_strict_mode' => '1',
            'session.lazy_write' => '1',
            'session.gc_probability' => '0',
        ] as $name => $value) {
            if (ini_get($name) !== $value && ini_set($name, $value) === false) {
                $pinned[] = $name . ' (the pool has "' . ini_get($name) . '", the gateway needs "' . $value . '")';
            }
        }
        $handler = new SessiongateSessionHandler($server);
        unset($server); // the handler keeps what it needs
        // false: PHP's own shutdown hook would close the session before
        // the application's shutdown functions run; ours runs after them.
        // No session_id() here: the ID reaches PHP when the script starts
        // its session (create_sid), so that session_id() is "" until then.
        $installed = session_set_save_handler($handler, false);
    } catch (\Error $e) {
        // Some PHP builds (8.2.36 here) refuse every change of a session
        // setting at run time, this handler included, while
        // session.upload_progress.enabled is on, with an Error that would
        // fail every page. The gateway's PHP_VALUE turns it off; a pool
        // that loads this file itself must.
        error_log('sessiongate: PHP refused the gateway\'s session settings (' . $e->getMessage() . '), so this script\'s session is not shared. Set php_value[session.upload_progress.enabled] = 0 in the pool (upload progress cannot reach the gateway\'s session anyway)', 4);
        $ownAutoStart();
        return;
    }
    if ($pinned !== []) {
        error_log('sessiongate: php_admin_value in the pool fixes ' . implode(', ', $pinned) . '; use php_value or nothing for these settings', 4);
    }
    $GLOBALS['__sessiongate_handler'] = $handler;
    if (!$installed || ini_get('session.save_handler') !== 'user') {
        // php_admin_value[session.save_handler] (a phpredis pool, say)
        // makes PHP keep its own handler without a warning: the script's
        // session stays in PHP's own store, under PHP's own cookie, and
        // is not shared.
        error_log('sessiongate: PHP refused the gateway\'s session handler; session.save_handler stays "' . ini_get('session.save_handler') . '" (fixed by php_admin_value in the pool?), so this script\'s session is not shared. Remove php_admin_value[session.save_handler].', 4);
        $ownAutoStart();
        return;
    }
    if ($handler->noStderr) {
        // The gateway logs it: this file's own error_log() lines only
        // reach php-fpm's log now.
        header('X-Sessiongate-Stderr: off');
    }
    $handler->exposeCookie();
    register_shutdown_function(static function () use ($handler): void {
        register_shutdown_function(static function () use ($handler): void {
            $handler->finishing = true;
            // PHP itself writes an active session later, after object
            // destructors (which may still change it). Once the headers
            // are out, nothing is gained by writing earlier; before, the
            // write rides in a header and PHP's own write at the end
            // sends what changed later (writeAtShutdown). A session of the
            // script's own handler is left to PHP, as without the gateway.
            if (session_status() === PHP_SESSION_ACTIVE && $handler->holdsSession() && !headers_sent()) {
                $handler->writeAtShutdown();
            }
        });
    });
    if ($autoStart) {
        // session.auto_start, now with the gateway's session.
        session_start();
    }
})();

}
