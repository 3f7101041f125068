package bolt_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/voiced-dev/voiced/agents/durable"
	"github.com/voiced-dev/voiced/agents/durable/bolt"
	"github.com/voiced-dev/voiced/agents/durable/durabletest"
)

func TestMain(m *testing.M) { durabletest.CrashMain(m, openSpec) }

// openSpec opens the store in directory spec (the crash test's child
// processes).
func openSpec(spec string) (durable.Store, func(), error) {
	s, err := bolt.Open(spec)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { s.Close() }, nil
}

// opener reopens one directory's store, as a restarted process would.
func opener(t *testing.T) func() durable.Store {
	dir := t.TempDir()
	var cur *bolt.Store
	t.Cleanup(func() {
		if cur != nil {
			cur.Close()
		}
	})
	return func() durable.Store {
		if cur != nil {
			cur.Close()
		}
		s, err := bolt.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		cur = s
		return s
	}
}

func TestConformance(t *testing.T) { durabletest.Run(t, opener) }

func TestCrash(t *testing.T) {
	durabletest.Crash(t, filepath.Join(t.TempDir(), "data"), openSpec)
}

func TestOpenCreatesFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, bolt.File)); err != nil {
		t.Fatalf("the database file: %v", err)
	}
}

// BenchmarkStep measures one checkpointed step (two fsynced writes) on the
// embedded store.
func BenchmarkStep(b *testing.B) {
	s, err := bolt.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	durabletest.BenchSteps(b, s)
}
