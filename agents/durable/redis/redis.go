// Package redis is a durable.Store in Redis, for several servers sharing
// their durable workflows.
package redis

import (
	"context"
	"errors"
	"fmt"

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
