// Package redis is a durable.Store in Redis, for several servers sharing
// their durable workflows.
package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voiced-dev/voiced/agents/durable"
)

// Store is a durable.Store in Redis. Keys, under Prefix:
//
//	<prefix>run:<id>  string: the run's record
//	<prefix>active    set: IDs of unfinished runs
//	<prefix>sig:<id>  list: the run's signals, oldest first
//
// The default prefix carries a hash tag, so that on a Redis Cluster all
// keys live in one slot (PutRun's transaction and AppendSignal's script
// touch two keys each); a custom prefix should keep one.
//
// How durable a write is depends on the server's persistence settings
// (appendonly yes with appendfsync always makes every write survive a
// server crash; the default loses up to a second). The client belongs to
// the caller, who closes it.
type Store struct {
	c      goredis.UniversalClient
	prefix string
}

// New returns a store using c, with keys under prefix ("" means
// "{voiced:durable}:").
func New(c goredis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = "{voiced:durable}:"
	}
	return &Store{c: c, prefix: prefix}
}

func (s *Store) runKey(id string) string { return s.prefix + "run:" + id }
func (s *Store) sigKey(id string) string { return s.prefix + "sig:" + id }
func (s *Store) activeKey() string       { return s.prefix + "active" }

// PutRun implements Store: the record and the active set change in one
// MULTI/EXEC transaction.
func (s *Store) PutRun(ctx context.Context, id string, record []byte, finished bool) error {
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, s.runKey(id), record, 0)
		if finished {
			p.SRem(ctx, s.activeKey(), id)
		} else {
			p.SAdd(ctx, s.activeKey(), id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("durable: redis: put %s: %w", id, err)
	}
	return nil
}

// createRun sets KEYS[1] to ARGV[1] and adds ARGV[2] to the set KEYS[2],
// only if KEYS[1] does not exist.
var createRun = goredis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SADD', KEYS[2], ARGV[2])
  return 1
end
return 0
`)

// CreateRun implements durable.Store, atomically (a script).
func (s *Store) CreateRun(ctx context.Context, id string, record []byte) (bool, error) {
	n, err := createRun.Run(ctx, s.c, []string{s.runKey(id), s.activeKey()}, record, id).Int64()
	if err != nil {
		return false, fmt.Errorf("durable: redis: create %s: %w", id, err)
	}
	return n == 1, nil
}

// GetRun implements durable.Store.
func (s *Store) GetRun(ctx context.Context, id string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.runKey(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("%w: %s", durable.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("durable: redis: get %s: %w", id, err)
	}
	return b, nil
}

// ActiveRuns implements durable.Store.
func (s *Store) ActiveRuns(ctx context.Context) ([]string, error) {
	ids, err := s.c.SMembers(ctx, s.activeKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("durable: redis: active runs: %w", err)
	}
	return ids, nil
}

// appendSignal pushes ARGV[1] onto KEYS[2] if KEYS[1] exists, atomically.
var appendSignal = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('RPUSH', KEYS[2], ARGV[1])
`)

// AppendSignal implements durable.Store.
func (s *Store) AppendSignal(ctx context.Context, id string, signal []byte) error {
	n, err := appendSignal.Run(ctx, s.c, []string{s.runKey(id), s.sigKey(id)}, signal).Int64()
	if err != nil {
		return fmt.Errorf("durable: redis: signal %s: %w", id, err)
	}
	if n < 0 {
		return fmt.Errorf("%w: %s", durable.ErrNotFound, id)
	}
	return nil
}

// Signals implements durable.Store.
func (s *Store) Signals(ctx context.Context, id string) ([][]byte, error) {
	vals, err := s.c.LRange(ctx, s.sigKey(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("durable: redis: signals %s: %w", id, err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}

// Leases (durable.Leaser). Keys, under the prefix:
//
//	<prefix>lease:<id>  string: the owner, expiring with the lease (PX)
//	<prefix>fence:<id>  integer: the run's latest fencing token
//
// Every check and write is one script, so it is atomic on the server; the
// expiry is the server's clock, not the engines'.

func (s *Store) leaseKey(id string) string { return s.prefix + "lease:" + id }
func (s *Store) fenceKey(id string) string { return s.prefix + "fence:" + id }

var acquireLease = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return -1 end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return t
`)

// AcquireLease implements durable.Leaser.
func (s *Store) AcquireLease(ctx context.Context, id, owner string, ttl time.Duration) (int64, error) {
	t, err := acquireLease.Run(ctx, s.c, []string{s.leaseKey(id), s.fenceKey(id)}, owner, ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("durable: redis: lease %s: %w", id, err)
	}
	if t < 0 {
		return 0, fmt.Errorf("%w: %s", durable.ErrLeaseHeld, id)
	}
	return t, nil
}

var renewLease = goredis.NewScript(`
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
`)

// RenewLease implements durable.Leaser. A lease that expired but that no
// other owner acquired since (the token is still the latest) is renewed.
func (s *Store) RenewLease(ctx context.Context, id, owner string, token int64, ttl time.Duration) error {
	n, err := renewLease.Run(ctx, s.c, []string{s.leaseKey(id), s.fenceKey(id)}, owner, token, ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("durable: redis: renew %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", durable.ErrLeaseLost, id)
	}
	return nil
}

var putFenced = goredis.NewScript(`
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[4] == '1' then redis.call('SREM', KEYS[3], ARGV[3]) else redis.call('SADD', KEYS[3], ARGV[3]) end
return 1
`)

// PutRunFenced implements durable.Leaser.
func (s *Store) PutRunFenced(ctx context.Context, id string, token int64, record []byte, finished bool) error {
	fin := "0"
	if finished {
		fin = "1"
	}
	n, err := putFenced.Run(ctx, s.c, []string{s.fenceKey(id), s.runKey(id), s.activeKey()}, token, record, id, fin).Int64()
	if err != nil {
		return fmt.Errorf("durable: redis: put %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", durable.ErrLeaseLost, id)
	}
	return nil
}

var releaseLease = goredis.NewScript(`
if tonumber(redis.call('GET', KEYS[2]) or '0') == tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return 1
`)

// ReleaseLease implements durable.Leaser.
func (s *Store) ReleaseLease(ctx context.Context, id string, token int64) error {
	if err := releaseLease.Run(ctx, s.c, []string{s.leaseKey(id), s.fenceKey(id)}, token).Err(); err != nil {
		return fmt.Errorf("durable: redis: release %s: %w", id, err)
	}
	return nil
}

var _ durable.Leaser = (*Store)(nil)
