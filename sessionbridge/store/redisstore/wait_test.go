package redisstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/sessionbridge/store"
)

// cmdLog records what each round trip sent: one entry per command sent
// alone, one per pipeline with its command names joined by '+'.
type cmdLog struct {
	mu   sync.Mutex
	sent []string
}

func (l *cmdLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *cmdLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.add(cmd.Name())
		return next(ctx, cmd)
	}
}

func (l *cmdLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var names []string
		for _, c := range cmds {
			names = append(names, c.Name())
		}
		l.add(strings.Join(names, "+"))
		return next(ctx, cmds)
	}
}

func (l *cmdLog) add(s string) {
	s = strings.ToLower(s)
	if strings.HasPrefix(s, "hello") || strings.HasPrefix(s, "client") {
		return // a new connection's set-up
	}
	l.mu.Lock()
	l.sent = append(l.sent, s)
	l.mu.Unlock()
}

// take returns what was sent since the last call.
func (l *cmdLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sent
	l.sent = nil
	return s
}

func openWaitStore(t *testing.T, addr string, replicas int, log *cmdLog) *Store {
	t.Helper()
	return openTestStore(t, "redis://"+addr+"/0", log, Options{WaitReplicas: replicas, WaitTimeout: 50 * time.Millisecond})
}

// With WaitReplicas, each write of session data goes out in one pipeline
// with WAIT behind it (WAIT counts the replicas that have what its own
// connection wrote), and a shortfall fails the write with ErrUnavailable
// although the master applied it: miniredis has no replicas, so its WAIT
// always answers 0. A release that changes no data, a lock and a load do
// not wait. Without WaitReplicas no WAIT is sent at all.
func TestWaitReplicasShortfallFailsWrites(t *testing.T) {
	m := startMiniredis(t)
	ctx := context.Background()
	var log cmdLog
	s := openWaitStore(t, m.Addr(), 1, &log)
	const id = "waited"

	l, _, err := s.Lock(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("v1"), TTL: time.Minute})
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, errNotReplicated) {
		t.Fatalf("Unlock(Put) with no replica: %v, want ErrUnavailable (not replicated)", err)
	}
	if !strings.Contains(err.Error(), "0 of 1") {
		t.Errorf("the error does not say how many replicas acknowledged: %v", err)
	}
	if rec, err := s.Load(ctx, id); err != nil || string(rec.Value) != "v1" {
		t.Errorf("after the shortfall the master holds %q %v, want v1 (the write is applied, only unconfirmed)", rec.Value, err)
	}
	if k, _ := s.keys(id); m.Exists(k[1]) {
		t.Error("the lock is still held after an Unlock whose WAIT fell short")
	}
	sent := log.take()
	if !containsPipeline(sent, "wait") {
		t.Errorf("no pipeline of the unlock script and WAIT: %v", sent)
	}

	if _, err := s.Save(ctx, id, 0, []byte("x"), time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Save on a stale version: %v, want ErrConflict (nothing written, nothing to wait for)", err)
	}
	rec, _ := s.Load(ctx, id)
	if _, err := s.Save(ctx, id, rec.Version, []byte("v2"), time.Minute); !errors.Is(err, errNotReplicated) {
		t.Errorf("Save: %v, want a shortfall", err)
	}
	if err := s.Delete(ctx, id); !errors.Is(err, errNotReplicated) {
		t.Errorf("Delete: %v, want a shortfall", err)
	}
	if m.Exists("test:{" + id + "}") {
		t.Error("Delete did not delete")
	}
	if err := s.SetLogins(ctx, "7", []byte("h1"), time.Minute); !errors.Is(err, errNotReplicated) {
		t.Errorf("SetLogins: %v, want a shortfall", err)
	}
	if v, err := s.Logins(ctx, "7"); err != nil || string(v) != "h1" {
		t.Errorf("after SetLogins' shortfall the master holds %q %v, want h1", v, err)
	}
	if sent := log.take(); !containsPipeline(sent, "wait") {
		t.Errorf("no pipeline of SET and WAIT: %v", sent)
	}

	// A release that keeps the data: no WAIT.
	l, _, err = s.Lock(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Keep, TTL: time.Minute}); err != nil {
		t.Fatalf("Unlock(Keep): %v", err)
	}
	if sent := log.take(); containsPipeline(sent, "wait") {
		t.Errorf("a lock and a Keep release waited for replicas: %v", sent)
	}

	// Off: the same writes send no WAIT and succeed.
	var offLog cmdLog
	off := openWaitStore(t, m.Addr(), 0, &offLog)
	l, _, err = off.Lock(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("v3"), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := off.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if sent := offLog.take(); containsPipeline(sent, "wait") || len(sent) != 3 {
		t.Errorf("with WaitReplicas 0: sent %v, want 3 single commands and no WAIT", sent)
	}
}

// Bookkeeping (store.Mutation.NoWait, SaveNoWait: the manager's refresh
// of a session's last-use time, made by requests that only read it) is
// written without WAIT, so a replica away fails no read-only request; the
// write itself is made.
func TestWaitReplicasSkippedForBookkeeping(t *testing.T) {
	m := startMiniredis(t)
	ctx := context.Background()
	var log cmdLog
	s := openWaitStore(t, m.Addr(), 1, &log)
	const id = "bookkept"

	l, _, err := s.Lock(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("v1"), TTL: time.Minute, NoWait: true}); err != nil {
		t.Errorf("Unlock(Put, NoWait) with no replica: %v, want no wait and no error", err)
	}
	if rec, err := s.Load(ctx, id); err != nil || string(rec.Value) != "v1" {
		t.Errorf("after Unlock(Put, NoWait) the store holds %q %v, want v1", rec.Value, err)
	}
	rec, _ := s.Load(ctx, id)
	if _, err := s.SaveNoWait(ctx, id, rec.Version, []byte("v2"), time.Minute); err != nil {
		t.Errorf("SaveNoWait with no replica: %v, want no wait and no error", err)
	}
	if rec, err := s.Load(ctx, id); err != nil || string(rec.Value) != "v2" {
		t.Errorf("after SaveNoWait the store holds %q %v, want v2", rec.Value, err)
	}
	if _, err := s.SaveNoWait(ctx, id, rec.Version, []byte("stale"), time.Minute); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SaveNoWait on a stale version: %v, want ErrConflict", err)
	}
	if sent := log.take(); containsPipeline(sent, "wait") {
		t.Errorf("bookkeeping waited for replicas: %v", sent)
	}
}

func containsPipeline(sent []string, name string) bool {
	for _, s := range sent {
		parts := strings.Split(s, "+")
		if len(parts) == 2 && parts[1] == name && (parts[0] == "evalsha" || parts[0] == "eval" || parts[0] == "del" || parts[0] == "set") {
			return true
		}
	}
	return false
}

// A local waiter handed the lock by a Put whose WAIT fell short got a
// record holding that write: its own write must not be acknowledged on top
// of it, so its Unlock fails (applying nothing) and the lock is freed for
// the next request.
func TestWaitShortfallFailsHandedOverHolder(t *testing.T) {
	m := startMiniredis(t)
	ctx := context.Background()
	s := openWaitStore(t, m.Addr(), 1, &cmdLog{})
	const id = "handover"
	first, _, err := s.Lock(ctx, id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		l   store.Lease
		rec store.Record
		err error
	}
	next := make(chan got, 1)
	go func() {
		l, rec, err := s.Lock(ctx, id, time.Minute)
		next <- got{l, rec, err}
	}()
	for localWaiters(s, id) == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := first.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("1"), TTL: time.Minute}); !errors.Is(err, errNotReplicated) {
		t.Fatalf("first Unlock: %v, want a shortfall", err)
	}
	g := <-next
	if g.err != nil {
		t.Fatal(g.err)
	}
	if string(g.rec.Value) != "1" {
		t.Fatalf("the waiter got %q, want the handed-over record 1", g.rec.Value)
	}
	if _, err := g.l.Unlock(ctx, store.Mutation{Kind: store.Put, Value: []byte("2"), TTL: time.Minute}); err == nil {
		t.Fatal("the write built on an unconfirmed one was acknowledged")
	}
	if rec, _ := s.Load(ctx, id); string(rec.Value) != "1" {
		t.Errorf("record %q, want 1 (the second write not applied)", rec.Value)
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	l, _, err := s.Lock(lctx, id, time.Minute)
	if err != nil {
		t.Fatalf("the lock after the failed hand-over: %v", err)
	}
	_, _ = l.Unlock(ctx, store.Mutation{Kind: store.Keep})
}

// On a Cluster, go-redis sends a command without a key to a node of its
// choosing: WAIT would count another node's replicas. New refuses it.
func TestWaitReplicasRefusedOnCluster(t *testing.T) {
	m := startMiniredis(t)
	c, err := OpenClient("redis-cluster://" + m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := New(c, Options{WaitReplicas: 1}); err == nil || !strings.Contains(err.Error(), "Cluster") {
		t.Errorf("New on a cluster client with WaitReplicas: %v, want a refusal naming the Cluster", err)
	}
	if _, err := New(c, Options{}); err != nil {
		t.Errorf("New on a cluster client without WaitReplicas: %v", err)
	}
	if _, err := New(redis.NewClient(&redis.Options{Addr: m.Addr()}), Options{WaitReplicas: -1}); err == nil {
		t.Error("New accepted a negative WaitReplicas")
	}
}
