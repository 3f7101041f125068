package agents_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLibraryDoesNotImportRuntime keeps the agents library independent of
// the pipeline: only processors/agent bridges the two.
func TestLibraryDoesNotImportRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/voiced-dev/voiced/agents/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "github.com/voiced-dev/voiced/pipeline", "github.com/voiced-dev/voiced/frame":
			t.Errorf("the agents library depends on %s", dep)
		}
	}
}
