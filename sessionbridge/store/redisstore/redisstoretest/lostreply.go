// Package redisstoretest holds test doubles for the Redis store's tests
// and the integration tests, which both need to lose a script's reply.
package redisstoretest

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// LostReply is a go-redis hook that, once armed, lets the next script run
// and then reports the connection as broken, as when the reply is lost on
// the way back. It counts the runs of that script only (NOSCRIPT replies
// aside): the store may run other scripts meanwhile, such as the
// background release of a lock whose reply was lost, and they must not
// count.
type LostReply struct {
	mu     sync.Mutex
	armed  bool
	target string // SHA-1 of the script the armed call runs
	runs   int
}

// Arm makes the next script call lose its reply and starts counting its
// runs afresh.
func (h *LostReply) Arm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed, h.target, h.runs = true, "", 0
}

// Runs is how many times the armed script ran since Arm.
func (h *LostReply) Runs() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runs
}

func (h *LostReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *LostReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *LostReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !strings.HasPrefix(cmd.Name(), "eval") {
			return next(ctx, cmd)
		}
		sha := scriptSHA(cmd)
		h.mu.Lock()
		if h.armed && h.target == "" {
			h.target = sha
		}
		ours := sha == h.target
		h.mu.Unlock()
		err := next(ctx, cmd)
		if !ours {
			return err
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
			h.runs++
		}
		if err == nil && h.armed {
			h.armed = false
			return io.ErrUnexpectedEOF
		}
		return err
	}
}

// scriptSHA is the SHA-1 of the script an EVAL or EVALSHA runs.
func scriptSHA(cmd redis.Cmder) string {
	a := cmd.Args()
	if len(a) < 2 {
		return ""
	}
	s, _ := a[1].(string)
	if cmd.Name() == "eval" {
		sum := sha1.Sum([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	return s
}
