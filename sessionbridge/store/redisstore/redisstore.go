// Package redisstore is the Redis session store: standalone, Sentinel or
// Cluster, through a go-redis UniversalClient.
//
// # URLs (OpenClient)
//
// The scheme says which kind of deployment it is, so no URL is ambiguous:
//
//	redis://[user:pass@]host[:port][/db][?opt=v...]       one server
//	rediss://[user:pass@]host[:port][/db][?opt=v...]      one server, TLS
//	unix://[user:pass@]/path/to/redis.sock[?db=N&...]     one server, unix socket
//	redis-sentinel://[user:pass@]s1[:port],s2[:port][/db]?master=NAME[&sentinel_username=U&sentinel_password=P]
//	rediss-sentinel://...                                  the same over TLS
//	redis-cluster://[user:pass@]n1[:port],n2[:port][?opt=v...]
//	rediss-cluster://...                                   the same over TLS
//
// The port defaults to 6379. User info is always the credentials of the
// Redis servers that hold the data; Sentinel's own are sentinel_username and
// sentinel_password. One cluster node is enough (the others are discovered);
// listing several survives one being down at start. Further query options
// are go-redis's (dial_timeout, read_timeout, write_timeout, pool_size,
// max_retries, protocol, client_name, skip_verify, ...). Examples:
//
//	redis://127.0.0.1:6379/0
//	rediss://:s3cret@redis.example.com:6380/2?dial_timeout=1s
//	unix:///run/redis/redis.sock?db=1
//	redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/0?master=mymaster
//	redis-cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000
//
// OpenClient sets ContextTimeoutEnabled, dial/read/write timeouts of 500 ms
// (DefaultTimeout) and no automatic retries (see noRetriesUnlessAsked).
//
// # Keys
//
// A session is the hash <prefix>{<id>} (field v: version, field d: data,
// field t: the TTL in milliseconds its last write or refresh gave it, 0 for
// none; see inUse) and its lock the string <prefix>{<id>}:lock holding the owner's token
// (the store instance's random ID, a colon, and a sequence number in base
// 36). Beside them, for a while: <prefix>{<id>}:turn, a gateway's claim to
// the next turn of the lock (lockScript), and
// <prefix>{<id>}:fence:<instance>, written only by a background release
// (releaseToken: a lock or unlock whose reply was lost) that found the lock
// not its token's: the highest sequence number of that instance whose lock
// script must do nothing should it reach Redis late. The hash tag {<id>}
// puts them all in one cluster slot, so each Lua script below touches one
// slot, while sessions spread over all masters. The prefix must not
// contain braces: a constant tag would pin every session to one node.
//
// # Locks and waiting
//
// Lock is one round trip: a script does SET NX PX and, when it got the lock,
// HMGET of the record, giving it back the TTL it was last given if less is
// left (recordInUse: the request's use starts now, as Load's does). A lock attempt whose caller stopped waiting may
// still reach Redis later than the next one (Redis orders nothing across
// connections): the attempt's background release leaves the fence, the
// next attempt's lock carries a higher sequence number, and the late
// script, seeing either, changes nothing (lockScript). A holder whose
// request runs long renews the lock
// (Renew: PEXPIRE while it still holds the holder's token), so the lease
// only bounds how long a crashed gateway blocks a session. Unlock is one
// round trip: a script checks the token,
// applies the mutation, deletes the lock and publishes the session ID on
// <prefix>unlock. A waiter does not poll: every Store has one pub/sub
// subscription to that channel, started on first need, and a waiter sleeps
// until a notice for its session arrives or until the holder's lock would
// expire (the PTTL the failed attempt returned; a crashed holder's lock is
// taken over then), re-checking at least every second to cover notices lost
// while the connection was down.
//
// Waiters for one session on the same Store queue in process: only the first
// contends in Redis. When a holder unlocks with Keep, Put or Delete and a
// local waiter is queued, the script applies the mutation and re-keys the
// lock to the waiter's token instead of deleting it, and the waiter gets the
// lease and the record from that reply: a hot session costs one round trip
// per request. The lock is released for real, so waiters on other gateways
// get a turn, after maxHandoffs consecutive local hand-overs, and as soon as
// the next local waiter asked for the lock later than a contender on another
// gateway that has claimed the next turn (lockScript): each unlock reply
// tells the holder's gateway of that claim and when its contender asked,
// and a local waiter that asked earlier is still handed the lock (only a
// gateway's first waiter contends in Redis, so the older ones queued
// behind it are known only to their own gateway). Waiters are so served
// oldest first across gateways, but for the one hand-over a holder makes
// before its reply tells it of a new claim, instead of the holder's gateway
// (or the one nearest to Redis) winning every race for a released lock, or
// the gateways alternating whatever their waiters' ages. Clocks that
// disagree shift that order by their skew, and maxHandoffs keeps a gateway
// whose clock runs behind from holding on; a gateway of a release before
// this rule still releases at any claim, which costs order, not locks.
package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// DefaultPrefix starts every key and the notice channel.
const DefaultPrefix = "sessiongate:"

const (
	// maxHandoffs bounds consecutive in-process hand-overs of one lock.
	maxHandoffs = 16
	// maxWait caps a waiter's sleep between attempts: a notice lost while
	// the pub/sub connection was down costs at most this much delay.
	maxWait = time.Second
	// turnTTL is how long an instance's claim to the next turn of a lock
	// outlives its contender's last try (contenders try at least every
	// maxWait): a claim of a gateway that died lapses after it.
	turnTTL = 2 * maxWait
	// cleanupTimeout bounds background releases of locks whose acquisition
	// outcome is unknown.
	cleanupTimeout = 2 * time.Second
	// releaseRetryMin is the first pause between attempts of a background
	// release that got no answer; it doubles up to maxWait.
	releaseRetryMin = 50 * time.Millisecond
	// maxRetriedReleases bounds the background releases retried at once.
	maxRetriedReleases = 1024
)

// Options configure New.
type Options struct {
	// Prefix of keys and the pub/sub channel (default DefaultPrefix). Must
	// not contain '{' or '}'.
	Prefix string
	// Logger receives pub/sub trouble and lock take-overs (default
	// slog.Default()). Session IDs are never logged.
	Logger *slog.Logger
	// WaitReplicas > 0 makes every write of session data (Save, Delete,
	// an Unlock that puts or deletes; not the bookkeeping of SaveNoWait
	// and a NoWait Put) wait until that many replicas have it (WAIT, on
	// the connection that wrote), and fail with
	// store.ErrUnavailable when fewer do within WaitTimeout. Replication is
	// asynchronous: without it a write the master acknowledged can be
	// missing on the replica a failover promotes. Not on a Cluster (New
	// refuses it): go-redis sends a command without a key, as WAIT is,
	// to a node of its choosing, not the one that took the write.
	WaitReplicas int
	// WaitTimeout bounds each WAIT (at least 1 ms; WAIT 0 would block for
	// ever). It must stay below the client's read timeout, or the reply
	// is cut off as a broken connection instead of counted.
	WaitTimeout time.Duration
	// Coalesce sends the scripts of concurrent requests together, one
	// pipeline per batch (see coalescer): less CPU per request in the
	// gateway and in Redis, but a call that arrives while a batch is in
	// flight waits for it, which costs throughput when the round trip is
	// long (a Redis across a network).
	Coalesce bool
}

// Store is a store.Store on Redis. It does not own the client: Close stops
// the subscription and waits for background work, the caller closes the
// client afterwards.
type Store struct {
	c       redis.UniversalClient
	prefix  string
	channel string
	log     *slog.Logger

	tokenPrefix string
	tokenSeq    atomic.Uint64

	waitReplicas int
	waitTimeout  time.Duration

	mu     sync.Mutex
	queues map[string]*queue
	closed bool
	// releasing counts background releases that retry (releaseToken).
	releasing int
	// stop is closed by Close: background releases stop retrying.
	stop chan struct{}

	subMu  sync.Mutex
	sub    *redis.PubSub
	subTry *subAttempt // the subscription attempt in flight, if any
	// subFailing: the last subscription attempt failed (logged once).
	subFailing bool

	wg sync.WaitGroup // subscription reader and background cleanups

	// scripts runs the scripts: co, or noRetry on c without Coalesce.
	scripts redis.Scripter
	co      *coalescer
}

var _ store.Store = (*Store)(nil)
var _ store.LoginRegistry = (*Store)(nil)
var _ store.Settler = (*lease)(nil)

// New returns a store on client. It does not contact Redis; call Ping.
func New(client redis.UniversalClient, o Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, errors.New("redisstore: key prefix must not contain '{' or '}' (it would become a hash tag shared by every session)")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.WaitReplicas < 0 {
		return nil, errors.New("redisstore: the number of replicas to wait for must not be negative")
	}
	if _, cluster := client.(*redis.ClusterClient); cluster && o.WaitReplicas > 0 {
		return nil, errors.New("redisstore: waiting for replicas is not supported on a Redis Cluster (go-redis would send WAIT to another node than the one that took the write)")
	}
	o.WaitTimeout = max(o.WaitTimeout, time.Millisecond)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go >= 1.24)
	st := &Store{
		c:            client,
		prefix:       o.Prefix,
		channel:      o.Prefix + "unlock",
		log:          o.Logger.With("component", "redisstore"),
		tokenPrefix:  hex.EncodeToString(rnd[:]) + ":",
		waitReplicas: o.WaitReplicas,
		waitTimeout:  o.WaitTimeout,
		queues:       make(map[string]*queue),
		stop:         make(chan struct{}),
	}
	st.scripts = noRetry{client}
	if o.Coalesce {
		st.co = newCoalescer(client)
		st.scripts = st.co
	}
	return st, nil
}

var errBadID = errors.New("redisstore: session ID is empty or contains '{' or '}'")

func (s *Store) keys(id string) ([]string, error) {
	if id == "" || strings.ContainsAny(id, "{}") {
		return nil, errBadID
	}
	k := s.prefix + "{" + id + "}"
	return []string{k, k + ":lock", k + ":turn", k + ":fence:" + s.instance()}, nil
}

// instance names this store instance in keys: its token prefix without the
// colon.
func (s *Store) instance() string {
	return strings.TrimSuffix(s.tokenPrefix, ":")
}

// newToken identifies one lease: unique per store instance (random prefix)
// and per acquisition (sequence).
func (s *Store) newToken() string {
	return s.tokenPrefix + strconv.FormatUint(s.tokenSeq.Add(1), 36)
}

// initialVersion is the version of a newly created record: the clock in
// microseconds, so a record deleted and created again does not restart at a
// version a stale compare-and-set may hold. It stays below 2^53, which Lua
// numbers represent exactly (until the year 2255).
func initialVersion() string {
	return strconv.FormatInt(time.Now().UnixMicro(), 10)
}

func ms(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	if m := d.Milliseconds(); m > 0 {
		return m
	}
	return 1 // a positive TTL below 1 ms must not mean "no expiry"
}

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: redis %s: %w", store.ErrUnavailable, op, noSentinel(err))
}

// noSentinel names the cause when no Sentinel answered: go-redis asks one
// for the master's address at every new connection, and with all of them
// down the master, though up, gets no new connection (those open go on
// working). go-redis's own message ends in the last Sentinel's dial error,
// which read as the master being down. The gateway does not fall back to
// the last address it knew (README, "Every Sentinel down").
//
// A Redis server named as a Sentinel (its port, 6379, for the Sentinel's,
// 26379) answers, but refuses the SENTINEL command: that is said first, as
// no restart cures it.
func noSentinel(err error) error {
	if err == nil || !strings.Contains(err.Error(), "all sentinels specified in configuration are unreachable") {
		return err
	}
	if msg := strings.ToLower(err.Error()); strings.Contains(msg, "unknown command") && strings.Contains(msg, "sentinel") {
		return fmt.Errorf("the redis-sentinel:// address answers as a Redis server, not a Sentinel (it does not know the SENTINEL command): name the Sentinels (port 26379 by default), or use redis:// for a Redis without Sentinel: %w", err)
	}
	return fmt.Errorf("no Sentinel reachable, so no new connection to the master can be made (its address comes from a Sentinel each time; connections already open go on working): %w", err)
}

// lockSuperseded is Lua that lockScript and unlockScript start with.
// seq(token, instance) is the sequence number of a token of instance (0
// when malformed); superseded(h, fence, token, instance) reports whether
// a lock script of token, finding the lock holding h (false: none), is
// late (see lockScript); raiseFence(fence, token, instance, ms) makes the
// fence at least token's seq for at least ms.
const lockSuperseded = `
local function seq(token, instance)
  return tonumber(string.sub(token, #instance + 1), 36) or 0
end
local function superseded(h, fence, token, instance)
  local n = seq(token, instance)
  if h and string.sub(h, 1, #instance) == instance and seq(h, instance) > n then return true end
  local f = redis.call('GET', fence)
  return f and seq(instance .. f, instance) >= n
end
local function raiseFence(fence, token, instance, ms)
  local v = string.sub(token, #instance + 1)
  local f = redis.call('GET', fence)
  if f then
    if seq(instance .. f, instance) >= seq(token, instance) then v = f end
    local p = redis.call('PTTL', fence)
    if p > ms then ms = p end
  end
  redis.call('SET', fence, v, 'PX', ms)
end
`

// recordInUse is Lua that the scripts which hand a record to a request
// (loadScript, lockScript, unlockScript's hand-over) start with.
// inUse(k, t) counts that request as a use of record k from its start: a
// record whose TTL left is below t, the TTL its last write or refresh gave
// it (field t), gets t again, never a shorter one. Without it a request
// that began shortly before the TTL, counted from the previous use, ran
// out found the record gone when it ended: its write dropped, the session
// ended under it. A PTTL check rather than PEXPIRE GT, which Redis before
// 7.0 does not have. A record without t (written by a gateway of a
// release before it) is left as it is.
const recordInUse = `
local function inUse(k, t)
  t = tonumber(t)
  if not t or t <= 0 then return end
  local p = redis.call('PTTL', k)
  if p >= 0 and p < t then redis.call('PEXPIRE', k, t) end
end
`

// Scripts. Every script touches only KEYS[*] of one session (one slot).
// Versions travel as decimal strings into Redis and come back as integers:
// Lua numbers are doubles, exact below 2^53, and tostring() would print
// them in exponent form, so no script ever formats a version itself.
var (
	// KEYS[1] record; ARGV: expected version, value, ttl ms, initial
	// version. Returns the new version or -1 on conflict.
	saveScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur then cur = '0' end
if cur ~= ARGV[1] then return -1 end
local v
if cur == '0' then
  redis.call('HSET', KEYS[1], 'v', ARGV[4], 'd', ARGV[2], 't', ARGV[3])
  v = tonumber(ARGV[4])
else
  v = redis.call('HINCRBY', KEYS[1], 'v', 1)
  redis.call('HSET', KEYS[1], 'd', ARGV[2], 't', ARGV[3])
end
if tonumber(ARGV[3]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('PERSIST', KEYS[1])
end
return v
`)

	// KEYS[1] record; ARGV: expected version, ttl ms. Refreshes the TTL
	// only if the record is still of that version. Returns 1.
	touchScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[1], 't', ARGV[2])
end
return 1
`)

	// KEYS[1] record. Returns {version|nil, data|nil} (HMGET's reply) and
	// counts the load as a use (inUse).
	loadScript = redis.NewScript(recordInUse + `
local r = redis.call('HMGET', KEYS[1], 'v', 'd', 't')
if r[1] then inUse(KEYS[1], r[3]) end
return {r[1], r[2]}
`)

	// KEYS[1] record, KEYS[2] lock, KEYS[3] turn, KEYS[4] fence; ARGV:
	// token, lease ms, instance, turn ms, channel, id, since (unix ms the
	// caller asked). Returns {1, version|nil, data|nil} or {0, ms to wait
	// at most}. A lock taken counts as a use of the record (inUse).
	//
	// The turn key ("instance since") names the instance (gateway) whose
	// contender found the lock taken since it was last acquired. While it
	// is there, no other instance takes the lock: without it the holder's
	// own gateway, which learns of the release first, took the lock again
	// and again while another gateway's waiters timed out. A contender that
	// has waited longer than the claimant (an earlier since) takes the claim
	// over: with three gateways or more, the one nearest to Redis otherwise
	// won every race for the next claim and a farther one starved. (Gateway
	// clocks that disagree only shift that order by the skew.) The key lives
	// turn ms past each try; when its owner takes the lock, the others are
	// told (PUBLISH) so their next try claims the next turn at once. A bare
	// "instance" (a gateway of the release before "since") counts as oldest.
	// The claim names a gateway's first waiter only; the holder's gateway
	// learns of it from its unlock replies and hands the lock to its own
	// next waiter rather than release it while that waiter asked earlier
	// (unlockScript, turnAllows).
	//
	// A token is the instance (ARGV[3]) then a seq, counting up in base 36
	// (newToken). A script whose caller stopped waiting for its reply can
	// still run later: its packet was held up, or Redis read its
	// connection after another's written later (Redis orders nothing
	// across connections).
	// Such a late script must change nothing, and it tells itself by its
	// seq (lockSuperseded): this instance's contender for a session runs
	// only while no lease of this instance holds it (the head contends;
	// local waiters queue behind a holder), and every token of this
	// instance made for the session after a contender's try has a higher
	// seq. So a lock of this instance with a higher seq than the script's is
	// a live lease taken after it, and the script does nothing (no DEL, no
	// SET, no turn claim); nor when the fence key holds a seq at or above
	// its own: a release of its token, or of a later one, ran before it
	// (releaseToken; unlockScript writes the fence only then, so it exists
	// only after a lock or unlock whose outcome was unknown). A lock of this
	// instance with a lower seq is dead: that token's lease ended and its
	// release was lost (a failover: the old master acknowledged it, the
	// promoted replica never got it) or is still being retried. Nobody
	// else would free it before the lease's end.
	lockScript = redis.NewScript(lockSuperseded + recordInUse + `
local h = redis.call('GET', KEYS[2])
if superseded(h, KEYS[4], ARGV[1], ARGV[3]) then
  local p = redis.call('PTTL', KEYS[2])
  if p < 0 then p = redis.call('PTTL', KEYS[3]) end
  return {0, p}
end
local dead = h and string.sub(h, 1, #ARGV[3]) == ARGV[3]
if dead then redis.call('DEL', KEYS[2]) end
local w = redis.call('GET', KEYS[3])
local mine = not w
if w then
  local wi, ws = string.match(w, '^(%S+) (%d+)$')
  if not wi then wi, ws = w, nil end
  mine = wi == ARGV[3] or (ws ~= nil and tonumber(ARGV[7]) < tonumber(ws))
end
if mine and redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if w then
    redis.call('DEL', KEYS[3])
    redis.call('PUBLISH', ARGV[5], ARGV[6])
  end
  local r = redis.call('HMGET', KEYS[1], 'v', 'd', 't')
  if r[1] then inUse(KEYS[1], r[3]) end
  return {1, r[1], r[2]}
end
if dead then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
if mine then redis.call('SET', KEYS[3], ARGV[3] .. ' ' .. ARGV[7], 'PX', ARGV[4]) end
local p = redis.call('PTTL', KEYS[2])
if p < 0 then p = redis.call('PTTL', KEYS[3]) end
return {0, p}
`)

	// KEYS[1] record, KEYS[2] lock, KEYS[3] turn, KEYS[4] fence; ARGV:
	// token, kind (k|p|d), ttl ms, value, initial version, channel, id,
	// next token ('' = release), next lease ms, instance, fence ms (0 =
	// none). Returns {-1} when the token does not hold the lock (nothing
	// applied), else {1, version, data|nil, turn}; data is the record value
	// for a Keep hand-over, so the next holder needs no load (and the
	// hand-over counts as its use of the record: inUse); turn is 0
	// unless another instance waits for its turn (lockScript), else when
	// that instance's contender asked for the lock (the claim's since, unix
	// ms; 1 for a claim without one, the oldest): this instance hands the
	// lock over again only to a local waiter that asked earlier
	// (turnAllows), and releases it otherwise.
	//
	// A release of a token whose lock script may not have run yet
	// (releaseToken) passes fence ms, the token's lease: finding the lock
	// not the token's, it raises the fence to the token's seq for that
	// long, so that the script, should it come late, does nothing
	// (lockScript). The fence is never lowered nor shortened.
	unlockScript = redis.NewScript(lockSuperseded + recordInUse + `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  if tonumber(ARGV[11]) > 0 then raiseFence(KEYS[4], ARGV[1], ARGV[10], tonumber(ARGV[11])) end
  return {-1}
end
local kind = ARGV[2]
local v = 0
local d = false
if kind == 'p' then
  if redis.call('HEXISTS', KEYS[1], 'v') == 1 then
    v = redis.call('HINCRBY', KEYS[1], 'v', 1)
    redis.call('HSET', KEYS[1], 'd', ARGV[4], 't', ARGV[3])
  else
    redis.call('HSET', KEYS[1], 'v', ARGV[5], 'd', ARGV[4], 't', ARGV[3])
    v = tonumber(ARGV[5])
  end
  if tonumber(ARGV[3]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  else
    redis.call('PERSIST', KEYS[1])
  end
elseif kind == 'd' then
  redis.call('DEL', KEYS[1])
else
  local cur = redis.call('HGET', KEYS[1], 'v')
  if cur then
    v = tonumber(cur)
    if tonumber(ARGV[3]) > 0 then
      redis.call('PEXPIRE', KEYS[1], ARGV[3])
      redis.call('HSET', KEYS[1], 't', ARGV[3])
    end
    if ARGV[8] ~= '' then
      local r = redis.call('HMGET', KEYS[1], 'd', 't')
      d = r[1]
      inUse(KEYS[1], r[2])
    end
  end
end
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[2], ARGV[8], 'PX', ARGV[9])
else
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[6], ARGV[7])
end
local w = redis.call('GET', KEYS[3])
local turn = 0
if w then
  local wi, ws = string.match(w, '^(%S+) (%d+)$')
  if not wi then wi = string.match(w, '^%S+') end
  if wi ~= ARGV[10] then
    turn = tonumber(ws) or 1
    if turn < 1 or turn >= 2^53 then turn = 1 end
  end
end
return {1, v, d, turn}
`)

	// KEYS[1] lock; ARGV: token, lease ms. A live holder extends its lock:
	// only while the lock still carries its token, so a renewal never
	// extends a lock that expired and was taken, or was passed on.
	// Returns 1 when renewed, 0 when the token does not hold the lock.
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

	// KEYS[1] turn; ARGV: instance, channel, id. A contender that gives up
	// with nobody of its instance behind it hands its turn back, so the
	// other instances need not wait for it to expire.
	clearTurnScript = redis.NewScript(`
local w = redis.call('GET', KEYS[1])
if w and string.match(w, '^%S+') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return 1
`)
)

// noRetry runs scripts as commands go-redis does not send twice once they
// may have run. A script whose reply was lost may have run, and a second run
// reports a false conflict (Save), waits for the lock it already holds
// (Lock) or reports a false lost lease (Unlock). MaxRetries (see
// noRetriesUnlessAsked) is not enough: the cluster client re-sends a command
// after a broken connection or a timeout on its own, up to MaxRedirects
// times. Redirections and refusals (MOVED, ASK, TRYAGAIN, READONLY, ...) are
// still followed and retried as before.
type noRetry struct{ redis.UniversalClient }

func (c noRetry) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return c.eval(ctx, "eval", script, keys, args)
}

func (c noRetry) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return c.eval(ctx, "evalsha", sha1, keys, args)
}

func (c noRetry) eval(ctx context.Context, name, script string, keys []string, args []any) *redis.Cmd {
	return evalLoop(ctx, name, script, keys, args, func(ctx context.Context, cmd *redis.Cmd) *redis.Cmd {
		_ = c.Process(ctx, noRetryCmd{cmd})
		return cmd
	})
}

type noRetryCmd struct{ *redis.Cmd }

// NoRetry allows another attempt only when the failed one provably did not
// run the script: an error reply (the server refused the command), a failed
// dial or no free pool connection. go-redis asks after the attempt failed.
func (c noRetryCmd) NoRetry() bool {
	err := c.Err()
	var refused redis.Error
	if errors.As(err, &refused) || notSent(err) {
		return false
	}
	return true
}

// notSent reports whether a failed command never left: a failed dial or no
// free pool connection. (An error reply is not enough for a script: what it
// wrote before failing stays.)
func notSent(err error) bool {
	var op *net.OpError
	return errors.Is(err, redis.ErrPoolTimeout) || (errors.As(err, &op) && op.Op == "dial")
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, id string) (store.Record, error) {
	keys, err := s.keys(id)
	if err != nil {
		return store.Record{}, err
	}
	// A script, not a bare HMGET, in the same round trip: the load
	// counts as a use of the record (inUse). It runs twice harmlessly.
	vals, err := loadScript.Run(ctx, s.c, keys[:1]).Slice()
	if err != nil {
		return store.Record{}, unavailable("load", err)
	}
	if len(vals) != 2 {
		return store.Record{}, unavailable("load", fmt.Errorf("the load script returned %d values", len(vals)))
	}
	return parseRecord("load", vals[0], vals[1])
}

// parseRecord turns the version and data replies into a Record; both nil is
// an absent record.
func parseRecord(op string, v, d any) (store.Record, error) {
	if v == nil {
		return store.Record{}, nil
	}
	vs, ok := v.(string)
	if !ok {
		return store.Record{}, unavailable(op, fmt.Errorf("version has type %T", v))
	}
	ver, err := strconv.ParseUint(vs, 10, 64)
	if err != nil || ver == 0 {
		return store.Record{}, unavailable(op, errors.New("malformed version field"))
	}
	ds, _ := d.(string)
	return store.Record{Value: []byte(ds), Version: ver}, nil
}

// Save implements store.Store.
func (s *Store) Save(ctx context.Context, id string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	return s.save(ctx, id, expect, value, ttl, true)
}

// SaveNoWait implements store.NoWaitSaver: a Save that does not wait for
// replicas, for bookkeeping (store.Mutation.NoWait).
func (s *Store) SaveNoWait(ctx context.Context, id string, expect uint64, value []byte, ttl time.Duration) (uint64, error) {
	return s.save(ctx, id, expect, value, ttl, false)
}

var _ store.NoWaitSaver = (*Store)(nil)

func (s *Store) save(ctx context.Context, id string, expect uint64, value []byte, ttl time.Duration, wait bool) (uint64, error) {
	keys, err := s.keys(id)
	if err != nil {
		return 0, err
	}
	args := []any{strconv.FormatUint(expect, 10), value, ms(ttl), initialVersion()}
	var (
		cmd  *redis.Cmd
		werr error
	)
	if wait {
		cmd, werr = s.runWrite(ctx, "save", saveScript, keys[:1], args...)
	} else {
		cmd = saveScript.Run(ctx, s.scripts, keys[:1], args...)
	}
	n, err := cmd.Int64()
	if err != nil {
		return 0, unavailable("save", err)
	}
	if n < 0 {
		return 0, store.ErrConflict
	}
	if n == 0 {
		return 0, unavailable("save", errors.New("script returned version 0"))
	}
	s.savedUnderLock(id, expect, value, uint64(n))
	if werr != nil {
		return 0, werr
	}
	return uint64(n), nil
}

// Touch implements store.Store.
func (s *Store) Touch(ctx context.Context, id string, expect uint64, ttl time.Duration) error {
	keys, err := s.keys(id)
	if err != nil {
		return err
	}
	if ttl <= 0 {
		return nil
	}
	// Idempotent: a reply lost and the script run twice does no harm.
	if err := touchScript.Run(ctx, s.c, keys[:1], strconv.FormatUint(expect, 10), ms(ttl)).Err(); err != nil {
		return unavailable("touch", err)
	}
	return nil
}

// loginKey is the key of user's LoginRegistry record: beside the
// sessions, in a slot of its own on a Cluster.
func (s *Store) loginKey(user string) (string, error) {
	if !store.ValidLoginUser(user) {
		return "", errBadLoginUser
	}
	return s.prefix + "login:" + user, nil
}

var errBadLoginUser = errors.New("redisstore: user id unfit for the login registry")

// SetLogins implements store.LoginRegistry.
func (s *Store) SetLogins(ctx context.Context, user string, value []byte, ttl time.Duration) error {
	key, err := s.loginKey(user)
	if err != nil {
		return err
	}
	// Waited for like a session write: a record a failover lost would let
	// the sessions a password change ended name the user on PHP again.
	return s.writeKey(ctx, "record logins", func(c redis.Cmdable) redis.Cmder { return c.Set(ctx, key, value, max(ttl, 0)) })
}

// Logins implements store.LoginRegistry.
func (s *Store) Logins(ctx context.Context, user string) ([]byte, error) {
	key, err := s.loginKey(user)
	if err != nil {
		return nil, err
	}
	v, err := s.c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable("read logins", err)
	}
	return v, nil
}

// KeepLogins implements store.LoginRegistry. PEXPIRE creates no key.
// A ttl <= 0 keeps the record as it is: the registry's records then never
// expire (SetLogins).
func (s *Store) KeepLogins(ctx context.Context, user string, ttl time.Duration) error {
	key, err := s.loginKey(user)
	if err != nil {
		return err
	}
	if ttl <= 0 {
		return nil // SetLogins gave it no expiry either
	}
	if err := s.c.PExpire(ctx, key, ttl).Err(); err != nil {
		return unavailable("keep logins", err)
	}
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	keys, err := s.keys(id)
	if err != nil {
		return err
	}
	return s.writeKey(ctx, "delete", func(c redis.Cmdable) redis.Cmder { return c.Del(ctx, keys[0]) })
}

// writeKey runs one plain write command, op naming it in errors; when the
// store waits for replicas, with WAIT behind it in one pipeline, as
// runWrite does for the scripts.
func (s *Store) writeKey(ctx context.Context, op string, write func(redis.Cmdable) redis.Cmder) error {
	if s.waitReplicas == 0 {
		if err := write(s.c).Err(); err != nil {
			return unavailable(op, err)
		}
		return nil
	}
	var cmd redis.Cmder
	wait := s.writeThenWait(ctx, func(p redis.Pipeliner) { cmd = write(p) })
	if err := cmd.Err(); err != nil {
		return unavailable(op, err)
	}
	return s.replicated(op, wait)
}

// runWrite runs a script that writes session data, as script.Run does, and
// when the store waits for replicas sends WAIT right behind it, in one
// pipeline: WAIT counts the replicas that have everything its own
// connection wrote, so it must share the script's. werr is the shortfall
// (the script ran: its reply in cmd stands, and the write stays on the
// master). Without WaitReplicas it is script.Run itself, through the
// store's scripter like every other script: no WAIT, no extra round trip.
func (s *Store) runWrite(ctx context.Context, op string, script *redis.Script, keys []string, args ...any) (cmd *redis.Cmd, werr error) {
	if s.waitReplicas == 0 {
		return script.Run(ctx, s.scripts, keys, args...), nil
	}
	wait := s.writeThenWait(ctx, func(p redis.Pipeliner) { cmd = script.EvalSha(ctx, p, keys, args...) })
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		wait = s.writeThenWait(ctx, func(p redis.Pipeliner) { cmd = script.Eval(ctx, p, keys, args...) })
	}
	if cmd.Err() != nil {
		return cmd, nil
	}
	return cmd, s.replicated(op, wait)
}

// writeThenWait sends what write queues and WAIT behind it in one pipeline,
// on one connection (WAIT counts what its own connection wrote), and
// returns WAIT's reply. A Pipeliner has no Wait method: it goes as a
// command.
//
// The pipeline is sent once, whatever max_retries the URL sets (sendOnce):
// go-redis sent it again after a lost reply, on a new connection, so a
// script that had run ran twice and reported its own write as a conflict
// or a lost lease, and WAIT counted the replicas that had what the new
// connection wrote, nothing, instead of the write. A lost reply is
// ErrUnavailable, as without WAIT (noRetry).
func (s *Store) writeThenWait(ctx context.Context, write func(redis.Pipeliner)) *redis.Cmd {
	p := s.c.Pipeline()
	write(p)
	wait := redis.NewCmd(ctx, "wait", s.waitReplicas, s.waitTimeout.Milliseconds())
	_ = p.Process(ctx, sendOnce{wait})
	_, _ = p.Exec(ctx)
	return wait
}

// sendOnce keeps go-redis from sending its pipeline again (it asks every
// command of a failed pipeline).
type sendOnce struct{ *redis.Cmd }

func (sendOnce) NoRetry() bool { return true }

// errNotReplicated: WAIT counted fewer replicas than asked for.
var errNotReplicated = errors.New("too few replicas acknowledged the write")

// replicated turns WAIT's reply into the write's outcome.
func (s *Store) replicated(op string, wait *redis.Cmd) error {
	n, err := wait.Int64()
	if err != nil {
		return unavailable(op, fmt.Errorf("the write reached the master, waiting for replicas failed: %w", err))
	}
	if n < int64(s.waitReplicas) {
		return unavailable(op, fmt.Errorf("%w: %d of %d within %v; the master has it, a failover may lose it", errNotReplicated, n, s.waitReplicas, s.waitTimeout))
	}
	return nil
}

// Ping is the fail-fast probe: PING, and on a cluster also that the cluster
// reports cluster_state:ok and every master answers but those the cluster
// itself flags as failed (see pingCluster); otherwise also that the server
// is a writable master outside any cluster (checkRole). Last, that the
// Redis user may run every command sessions need (checkAccess).
//
// A failure no retry can cure (see ErrMisconfigured) also matches
// ErrMisconfigured.
func (s *Store) Ping(ctx context.Context) error {
	return pingResult(s.ping(ctx))
}

// pingResult adds ErrMisconfigured to the chain of a failure no retry can
// cure.
func pingResult(err error) error {
	if err != nil && settingRefused(err) {
		return misconfigured{err}
	}
	return err
}

// ErrMisconfigured marks a Ping failure that comes from the client's own
// settings, so that waiting for Redis cannot cure it: a password Redis
// refuses or none where one is required, a database number beyond the
// server's `databases`, an ACL user or a renamed command that leaves out
// a command sessions need, a URL of the wrong kind for the server, a TLS
// server the gateway does not trust or that wants a client certificate. A
// supervisor that restarts the gateway on a failed start would restart it
// for ever. Such an error matches store.ErrUnavailable too.
var ErrMisconfigured = errors.New("redis refuses the connection's settings")

// misconfigured keeps err's message and adds ErrMisconfigured to its chain.
type misconfigured struct{ error }

func (e misconfigured) Unwrap() []error { return []error{e.error, ErrMisconfigured} }

// refusalsOfSettings are the starts of Redis error replies that name the
// client's settings. A list, not every reply: LOADING (a Redis restarting
// with its data set), BUSY, MASTERDOWN, READONLY after a failover, OOM and
// the like pass with time, and a gateway stopped for good on one of them
// would stay down after Redis recovered.
var refusalsOfSettings = []string{
	"WRONGPASS",            // wrong password, or the user is disabled
	"NOAUTH",               // a password is required and the URL has none
	"NOPERM",               // ACL: a command, key or channel
	"ERR AUTH ",            // a password where the server has none (Redis 6+)
	"ERR Client sent AUTH", // the same, Redis 5
	"ERR DB index is out of range",
	"ERR invalid DB index",
	"ERR unknown command", // renamed away
	"ERR The user executing the script can't",      // ACL, from inside a script
	"ERR Unknown Redis command called from script", // renamed away
}

// Loading reports whether err carries Redis's LOADING reply: the server is
// up, reading its data set back at start, and answers commands once done.
func Loading(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply) && strings.HasPrefix(reply.Error(), "LOADING ")
}

// AnsweredNothing reports whether err is the deadline of a connection that
// was made: Redis is there but sent nothing back in time (still loading
// on some versions, overloaded, stalled). go-redis hands on a read's
// os.ErrDeadlineExceeded bare; a dial that timed out keeps its
// *net.OpError.
func AnsweredNothing(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// settingRefused reports whether err carries a Redis reply that no retry
// can change, or a server of the wrong kind for the URL.
func settingRefused(err error) bool {
	var kind wrongKind
	if errors.As(err, &kind) || tlsRefused(err) {
		return true
	}
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	for _, p := range refusalsOfSettings {
		if strings.HasPrefix(reply.Error(), p) {
			return true
		}
	}
	return false
}

// tlsRefused reports a TLS failure that comes from the URL or the
// gateway's trust settings: a server that does not speak TLS at all (a
// rediss:// URL on a plain port), a certificate from an authority the
// gateway does not trust (SSL_CERT_FILE missing or wrong), one for another
// name, or a server that asks for a client certificate, which the gateway
// never sends. An expired or not yet valid certificate is left out:
// renewing it on the Redis side cures it without touching the gateway.
func tlsRefused(err error) bool {
	var notTLS tls.RecordHeaderError
	var unknownCA x509.UnknownAuthorityError
	var otherName x509.HostnameError
	if errors.As(err, &notTLS) || errors.As(err, &unknownCA) || errors.As(err, &otherName) {
		return true
	}
	// crypto/tls hands on a peer's alert with an unexported type; its
	// text is RFC 8446's name for it.
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && op.Err.Error() == "tls: certificate required"
}

// wrongKind: the URL's scheme does not fit the server (a Cluster node or a
// Sentinel behind redis://).
type wrongKind string

func (e wrongKind) Error() string { return string(e) }

func (s *Store) ping(ctx context.Context) error {
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		failed, err := pingCluster(ctx, cc)
		if err != nil {
			return err
		}
		return s.checkClusterAccess(ctx, cc, failed)
	}
	if err := s.c.Ping(ctx).Err(); err != nil {
		if strings.HasPrefix(err.Error(), "NOPERM") {
			// A command of the connection's set-up (SELECT for a database
			// other than 0) or PING itself.
			return refusedCommand(err)
		}
		return unavailable("ping", sentinelMaster(s.c, err))
	}
	if err := s.checkRole(ctx); err != nil {
		return err
	}
	return s.checkAccess(ctx, probeID, s.c)
}

// sentinelMaster explains a failed dial of a Sentinel client's master: its
// address comes from the Sentinel, not from the URL, and one the gateway
// cannot reach (a master behind NAT or in a container announcing its
// inside address) was otherwise reported as a bare "dial tcp ADDR" for an
// address written nowhere in the configuration.
func sentinelMaster(c redis.UniversalClient, err error) error {
	rc, ok := c.(*redis.Client)
	if !ok || rc.Options().Addr != "FailoverClient" || strings.Contains(err.Error(), "all sentinels") {
		return err
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || op.Addr == nil {
		return err
	}
	return fmt.Errorf("the master the Sentinel names, at %s, does not answer (the gateway must reach it at the address the Sentinel knows it by: its sentinel monitor line, or replica-announce-ip of a promoted replica): %w", op.Addr, err)
}

// probeID names the keys checkAccess uses: a session ID the manager never
// makes (its IDs have no '.').
const probeID = ".sessiongate-probe"

// pingCluster checks the cluster as every node that answers sees it: each
// says cluster_state:ok, and each master that does not answer is one they
// all flag as failed (CLUSTER NODES, asked only then; slotsFailed for a
// user who may not run it). A cluster run with
// cluster-require-full-coverage no stays ok with a master down for good
// and serves the other masters' slots: every gateway then serves the
// sessions there, and a probe failing on all of them would take the site
// down for sessions that work. With the default (yes) the cluster says
// fail instead, and so does the probe; a master that stopped answering but
// is not flagged yet fails it too (for cluster-node-timeout). It returns
// the failed masters' addresses.
func pingCluster(ctx context.Context, cc *redis.ClusterClient) (map[string]bool, error) {
	var (
		mu        sync.Mutex
		live      []*redis.Client
		liveInfos []string
		downErr   = map[string]error{}
	)
	// fn's errors are kept, not returned: one master down must not hide
	// what the others say.
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && !strings.Contains(info, "cluster_state:ok") {
			err = errClusterNotOK
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			downErr[c.Options().Addr] = err
		} else {
			live = append(live, c)
			liveInfos = append(liveInfos, info)
		}
		return nil
	}); err != nil {
		return nil, unavailable("ping: cluster info", err)
	}
	for _, err := range downErr {
		if errors.Is(err, errClusterNotOK) {
			return nil, unavailable("ping", err)
		}
	}
	if len(downErr) == 0 {
		return nil, nil
	}
	failed := map[string]bool{}
	for addr, err := range downErr {
		flagged := len(live) > 0
		for _, c := range live {
			nodes, nerr := c.ClusterNodes(ctx).Result()
			if nerr != nil && strings.HasPrefix(nerr.Error(), "NOPERM") {
				if slotsFailed(ctx, cc, liveInfos, downErr) {
					return downAddrs(downErr), nil
				}
				return nil, unavailable("ping: cluster masters", err)
			}
			if nerr != nil || !flaggedFailed(nodes, addr) {
				flagged = false
				break
			}
		}
		if !flagged {
			return nil, unavailable("ping: cluster masters", err)
		}
		failed[addr] = true
	}
	return failed, nil
}

func downAddrs(down map[string]error) map[string]bool {
	m := make(map[string]bool, len(down))
	for addr := range down {
		m[addr] = true
	}
	return m
}

// slotsFailed is pingCluster's answer for a user without +cluster|nodes
// (the README's minimal ACL): the masters that do not answer are all
// flagged as failed when every live master's CLUSTER INFO counts exactly
// their slots (CLUSTER SLOTS) as on failed masters (cluster_slots_fail).
// Fewer means one is not flagged yet; more, that the cluster flags a
// master that answers the gateway: either way it cannot say, and the
// probe fails as it did.
func slotsFailed(ctx context.Context, cc *redis.ClusterClient, infos []string, down map[string]error) bool {
	ranges, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		return false
	}
	want := 0
	for _, r := range ranges {
		if len(r.Nodes) > 0 && down[r.Nodes[0].Addr] != nil {
			want += int(r.End - r.Start + 1)
		}
	}
	if want == 0 || len(infos) == 0 {
		return false
	}
	for _, info := range infos {
		v, _ := infoField(info, "cluster_slots_fail")
		if n, err := strconv.Atoi(v); err != nil || n != want {
			return false
		}
	}
	return true
}

// infoField is the value of the field name in an INFO or CLUSTER INFO
// reply, and whether the reply has it.
func infoField(info, name string) (string, bool) {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v, true
		}
	}
	return "", false
}

var errClusterNotOK = errors.New("cluster state is not ok")

// flaggedFailed reports whether the CLUSTER NODES reply nodes flags the
// node at addr ("host:port") as failed: "fail", agreed by a majority of
// masters, not "fail?" (one node's suspicion).
func flaggedFailed(nodes, addr string) bool {
	for line := range strings.SplitSeq(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		// ip:port@cport[,hostname]: go-redis knows the node by its
		// hostname when the cluster announces hostnames as endpoints.
		a, rest, _ := strings.Cut(f[1], "@")
		_, host, _ := strings.Cut(rest, ",")
		port := a[strings.LastIndexByte(a, ':')+1:]
		if a != addr && (host == "" || net.JoinHostPort(host, port) != addr) {
			continue
		}
		return slices.Contains(strings.Split(f[2], ","), "fail")
	}
	return false
}

// checkClusterAccess is checkAccess on a cluster: with probe keys in a slot
// of a master that is not failed, and the channel subscribed to on that
// master (a message published on one node reaches the subscribers of
// every node).
func (s *Store) checkClusterAccess(ctx context.Context, cc *redis.ClusterClient, failed map[string]bool) error {
	// A live master holds at least one slot: 1<<20 names all miss a
	// single slot of 16384 with a chance of e^-64.
	for i := 0; i < 1<<20; i++ {
		id := probeID
		if i > 0 {
			id += "-" + strconv.Itoa(i)
		}
		keys, err := s.keys(id)
		if err != nil {
			return err
		}
		m, err := cc.MasterForKey(ctx, keys[0])
		if err != nil {
			return unavailable("ping: cluster slots", err)
		}
		if !failed[m.Options().Addr] {
			return s.checkAccess(ctx, id, m)
		}
	}
	return unavailable("ping", errors.New("no slot of a live master found for the probe keys"))
}

// accessScript runs every command the store's scripts and calls use, on
// the keys of probeID and on the unlock channel, and leaves nothing
// behind: the commands that create a key are undone at once (the lock's
// expires in a second). A SET comes first: Redis out of memory
// (maxmemory with noeviction) refuses it, as it refuses every session
// lock and write, but lets a script that has written once (the PEXPIRE
// below) go on writing, so any later place would let the probe pass while
// every request that needs the session failed. KEYS[1] record, KEYS[2]
// lock, KEYS[3] turn, KEYS[4] fence (each key pattern an ACL may name);
// ARGV: channel.
var accessScript = redis.NewScript(`
redis.call('SET', KEYS[2], 'probe', 'NX', 'PX', 1000)
redis.call('SET', KEYS[3], 'probe', 'PX', 1000)
redis.call('GET', KEYS[3])
redis.call('PTTL', KEYS[3])
redis.call('SET', KEYS[4], 'probe', 'PX', 1000)
redis.call('GET', KEYS[4])
redis.call('PTTL', KEYS[4])
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('GET', KEYS[2])
redis.call('PTTL', KEYS[2])
redis.call('HGET', KEYS[1], 'v')
redis.call('HMGET', KEYS[1], 'v', 'd')
redis.call('HEXISTS', KEYS[1], 'v')
redis.call('PEXPIRE', KEYS[1], 1000)
redis.call('PERSIST', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], '')
redis.call('SET', KEYS[2], 'probe', 'NX', 'PX', 1000)
redis.call('PEXPIRE', KEYS[2], 1000)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'v', '1', 'd', '')
redis.call('PEXPIRE', KEYS[1], 1000)
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('DEL', KEYS[1])
return 1
`)

// refusedCommand is the start-up check's error for a command the server
// refuses (an ACL, a renamed command): it points at the README's list.
func refusedCommand(err error) error {
	return unavailable("ping", fmt.Errorf("the server refuses a command sessions need (see README: Redis permissions): %w", err))
}

// checkAccess makes sure the Redis user may do what sessions need. PING
// answers for any authenticated user, but an ACL without scripting, without
// the unlock channel (Redis 7 gives new users no channel), with other key
// patterns or read-only keys would let the gateway start and then answer
// every request that needs the session with 503. Scripts are run both as
// EVAL and EVALSHA, as redis.Script does, and the unlock channel is
// subscribed to once, through sub.
func (s *Store) checkAccess(ctx context.Context, id string, sub redis.UniversalClient) error {
	keys, err := s.keys(id)
	if err != nil {
		return err
	}
	wrap := func(err error) error {
		var refused redis.Error
		if !errors.As(err, &refused) {
			return unavailable("ping: probe", err) // a timeout, a lost connection
		}
		if strings.HasPrefix(refused.Error(), "OOM ") {
			return unavailable("ping", fmt.Errorf("Redis is out of memory (maxmemory reached, and its maxmemory-policy evicts nothing): it refuses every session lock and write: %w", err))
		}
		return refusedCommand(err)
	}
	if err := accessScript.Eval(ctx, s.c, keys, s.channel).Err(); err != nil {
		return wrap(err)
	}
	if err := accessScript.EvalSha(ctx, s.c, keys, s.channel).Err(); err != nil {
		return wrap(err)
	}
	if s.waitReplicas > 0 {
		// WAIT for no replica answers at once; refused, every write
		// would be a 503.
		if err := s.c.Do(ctx, "wait", 0, 0).Err(); err != nil {
			return wrap(err)
		}
	}
	ps := sub.Subscribe(ctx, s.channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return wrap(err)
	}
	return nil
}

// checkRole refuses a server that answers PING but cannot hold sessions
// through this client: a Cluster node behind redis:// (sessions in other
// nodes' slots would all fail with MOVED), a Sentinel (it knows no data
// command) or a read-only replica (every write would fail). The gateway
// would start and fail most requests; the probe says why instead. A server
// that refuses INFO (an ACL without @dangerous, a renamed command) is not
// checked.
func (s *Store) checkRole(ctx context.Context) error {
	info, err := s.c.Info(ctx, "server").Result()
	if err != nil {
		var refused redis.Error
		if errors.As(err, &refused) {
			return nil
		}
		return unavailable("ping: info", err)
	}
	switch {
	case strings.Contains(info, "redis_mode:cluster"):
		return unavailable("ping", wrongKind("the server is a Redis Cluster node: use a redis-cluster:// (or rediss-cluster://) URL"))
	case strings.Contains(info, "redis_mode:sentinel"):
		return unavailable("ping", wrongKind("the server is a Redis Sentinel: use a redis-sentinel://host:26379/0?master=NAME URL"))
	}
	info, err = s.c.Info(ctx, "replication").Result()
	if err != nil {
		var refused redis.Error
		if errors.As(err, &refused) {
			return nil
		}
		return unavailable("ping: info", err)
	}
	if strings.Contains(info, "role:slave") && strings.Contains(info, "slave_read_only:1") {
		return unavailable("ping", errors.New("the server is a read-only replica: point the URL at the master (or use redis-sentinel://)"))
	}
	return nil
}

// ConnectedReplicas returns how many replicas the master reports
// (INFO replication): fewer than Options.WaitReplicas means every session
// write fails. An error when the server refuses INFO (an ACL) or on a
// Cluster, where there is no one master to ask.
func (s *Store) ConnectedReplicas(ctx context.Context) (int, error) {
	if _, cluster := s.c.(*redis.ClusterClient); cluster {
		return 0, errors.New("redisstore: a Cluster has no single master")
	}
	info, err := s.c.Info(ctx, "replication").Result()
	if err != nil {
		return 0, unavailable("info", err)
	}
	if v, ok := infoField(info, "connected_slaves"); ok {
		return strconv.Atoi(v)
	}
	return 0, unavailable("info", errors.New("no connected_slaves in INFO replication"))
}

// Close stops the subscription and waits for background releases and for
// script batches sent on behalf of callers that gave up (Coalesce).
// Waiters still in Lock end with their context. The client stays open.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.subMu.Lock()
	if s.sub != nil {
		_ = s.sub.Close()
		s.sub = nil
	}
	s.subMu.Unlock()
	s.wg.Wait()
	if s.co != nil {
		s.co.close()
	}
	return nil
}

var errClosed = fmt.Errorf("%w: redis store closed", store.ErrUnavailable)
