package redisstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// reply is a Redis error reply as go-redis returns it.
type reply string

func (r reply) Error() string { return string(r) }
func (reply) RedisError()     {}

// Only the replies that name the client's settings stop a start for good
// (ErrMisconfigured, exit 78): a Redis loading its data set, busy, out of
// memory or between failovers recovers, and a gateway that exited 78 on
// one would not be restarted after it did. Either way the failure is still
// store.ErrUnavailable for /readyz, and its message is unchanged.
func TestPingMisconfiguredOnlyForSettings(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{reply("WRONGPASS invalid username-password pair or user is disabled."), true},
		{reply("NOAUTH Authentication required."), true},
		{reply("ERR DB index is out of range"), true},
		{reply("NOPERM this user has no permissions to run the 'evalsha' command"), true},
		{reply("ERR The user executing the script can't publish to the channel mentioned in the command script: 2f, on @user_script:11."), true},
		{reply("ERR Unknown Redis command called from script script: 2f, on @user_script:11."), true},
		{reply("ERR unknown command 'publish', with args beginning with: "), true},
		{reply("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"), true},
		{wrongKind("the server is a Redis Sentinel: use a redis-sentinel://host:26379/0?master=NAME URL"), true},
		{reply("LOADING Redis is loading the dataset in memory"), false},
		{reply("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT."), false},
		{reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), false},
		{reply("READONLY You can't write against a read only replica."), false},
		{reply("OOM command not allowed when used memory > 'maxmemory'."), false},
		{reply("CLUSTERDOWN The cluster is down"), false},
		{context.DeadlineExceeded, false},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false},
	} {
		for _, err := range []error{refusedCommand(tc.err), unavailable("ping", tc.err)} {
			err = fmt.Errorf("session store: %w", pingResult(err))
			if got := errors.Is(err, ErrMisconfigured); got != tc.want {
				t.Errorf("%v: ErrMisconfigured %v, want %v", err, got, tc.want)
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%v: not store.ErrUnavailable any more", err)
			}
		}
	}
}
