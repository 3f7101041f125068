package durable

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// RedisStore is a Store in Redis. Keys, under Prefix:
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
type RedisStore struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedis returns a store using c, with keys under prefix ("" means
// "{voiced:durable}:").
func NewRedis(c redis.UniversalClient, prefix string) *RedisStore {
	if prefix == "" {
		prefix = "{voiced:durable}:"
	}
	return &RedisStore{c: c, prefix: prefix}
}

func (s *RedisStore) runKey(id string) string { return s.prefix + "run:" + id }
func (s *RedisStore) sigKey(id string) string { return s.prefix + "sig:" + id }
func (s *RedisStore) activeKey() string       { return s.prefix + "active" }

// PutRun implements Store: the record and the active set change in one
// MULTI/EXEC transaction.
func (s *RedisStore) PutRun(ctx context.Context, id string, record []byte, finished bool) error {
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
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

// GetRun implements Store.
func (s *RedisStore) GetRun(ctx context.Context, id string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.runKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("durable: redis: get %s: %w", id, err)
	}
	return b, nil
}

// ActiveRuns implements Store.
func (s *RedisStore) ActiveRuns(ctx context.Context) ([]string, error) {
	ids, err := s.c.SMembers(ctx, s.activeKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("durable: redis: active runs: %w", err)
	}
	return ids, nil
}

// appendSignal pushes ARGV[1] onto KEYS[2] if KEYS[1] exists, atomically.
var appendSignal = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('RPUSH', KEYS[2], ARGV[1])
`)

// AppendSignal implements Store.
func (s *RedisStore) AppendSignal(ctx context.Context, id string, signal []byte) error {
	n, err := appendSignal.Run(ctx, s.c, []string{s.runKey(id), s.sigKey(id)}, signal).Int64()
	if err != nil {
		return fmt.Errorf("durable: redis: signal %s: %w", id, err)
	}
	if n < 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return nil
}

// Signals implements Store.
func (s *RedisStore) Signals(ctx context.Context, id string) ([][]byte, error) {
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
