// Package bolt is the embedded durable.Store: one bbolt file, fsynced on
// every write.
package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/voiced-dev/voiced/agents/durable"
)

// File is the name of the database file that Open keeps in its directory.
const File = "durable.db"

var (
	bucketRuns    = []byte("runs")
	bucketActive  = []byte("active")
	bucketSignals = []byte("signals") // one nested bucket per run
)

// Store is the embedded durable.Store: one bbolt file. Every write is a
// transaction that bbolt fsyncs before it returns. Only one process may
// open the file at a time (bbolt holds an exclusive lock on it).
type Store struct {
	db *bbolt.DB
}

// Open opens (creating it and dir if needed) the store in dir. It
// waits at most 5 seconds for another process to release the file.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("durable: bolt: %w", err)
	}
	db, err := bbolt.Open(filepath.Join(dir, File), 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("durable: bolt: open %s: %w", dir, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketRuns, bucketActive, bucketSignals} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("durable: bolt: init: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the file. Calls after Close fail.
func (s *Store) Close() error { return s.db.Close() }

// PutRun implements durable.Store.
func (s *Store) PutRun(_ context.Context, id string, record []byte, finished bool) error {
	return s.update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketRuns).Put([]byte(id), record); err != nil {
			return err
		}
		if finished {
			return tx.Bucket(bucketActive).Delete([]byte(id))
		}
		return tx.Bucket(bucketActive).Put([]byte(id), nil)
	})
}

// CreateRun implements durable.Store.
func (s *Store) CreateRun(_ context.Context, id string, record []byte) (bool, error) {
	created := false
	err := s.update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketRuns).Get([]byte(id)) != nil {
			return nil
		}
		if err := tx.Bucket(bucketRuns).Put([]byte(id), record); err != nil {
			return err
		}
		created = true
		return tx.Bucket(bucketActive).Put([]byte(id), nil)
	})
	return created, err
}

// GetRun implements durable.Store.
func (s *Store) GetRun(_ context.Context, id string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketRuns).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: %s", durable.ErrNotFound, id)
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// ActiveRuns implements durable.Store.
func (s *Store) ActiveRuns(context.Context) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketActive).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("durable: bolt: %w", err)
	}
	return ids, nil
}

// AppendSignal implements durable.Store.
func (s *Store) AppendSignal(_ context.Context, id string, signal []byte) error {
	return s.update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketRuns).Get([]byte(id)) == nil {
			return fmt.Errorf("%w: %s", durable.ErrNotFound, id)
		}
		b, err := tx.Bucket(bucketSignals).CreateBucketIfNotExists([]byte(id))
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), signal)
	})
}

// Signals implements durable.Store.
func (s *Store) Signals(_ context.Context, id string) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSignals).Bucket([]byte(id))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			out = append(out, append([]byte(nil), v...))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("durable: bolt: %w", err)
	}
	return out, nil
}

func (s *Store) update(fn func(*bbolt.Tx) error) error {
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("durable: bolt: %w", err)
	}
	return nil
}
